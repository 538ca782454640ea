"""The bank's command line, a client that only imports `examples.bank`:

    python -m examples.bank.teller CLUSTER_DIR open ACCOUNT DEPOSIT
    python -m examples.bank.teller CLUSTER_DIR transfer SOURCE TARGET AMOUNT
    python -m examples.bank.teller CLUSTER_DIR balances

Prints the balances after each command, one `account balance` a line; a refusal is one
line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys

import raftcluster
from examples.bank.part import Balances, GetBalances, Open, Transfer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.bank.teller")
    parser.add_argument("cluster", help="the cluster's directory (its cluster.toml)")
    commands = parser.add_subparsers(dest="command", required=True)
    opening = commands.add_parser("open")
    opening.add_argument("account")
    opening.add_argument("deposit", type=int)
    transfer = commands.add_parser("transfer")
    transfer.add_argument("source")
    transfer.add_argument("target")
    transfer.add_argument("amount", type=int)
    commands.add_parser("balances")
    args = parser.parse_args(argv)
    try:
        with raftcluster.connect_sync(cluster=args.cluster) as client:
            if args.command == "open":
                client.write(Open(args.account, args.deposit))
            elif args.command == "transfer":
                client.write(Transfer(args.source, args.target, args.amount))
            balances = client.read(GetBalances())
    except raftcluster.ClusterError as e:
        print(f"teller: {e}", file=sys.stderr)
        return 1
    assert isinstance(balances, Balances)
    for account in balances.accounts:
        print(account.name, account.balance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
