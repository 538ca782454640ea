import sys

from raftcluster.cli import main

sys.exit(main())
