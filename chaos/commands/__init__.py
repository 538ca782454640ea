"""The `raftcluster chaos` subcommands, one module each (see chaos/cli.py)."""
