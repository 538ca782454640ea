"""`raftcluster kv get|put|del|range|txn|watch|compact`: the configuration database from a
shell, through the client API (`raftcluster.connect`), with `--json`.

Each finds the cluster from `--cluster DIR` or `--endpoints HOST:PORT,...` (with
`--secret-file` and `--cluster-id`). Keys and values are text (UTF-8) unless `--hex` or
`--base64` says they are given and shown in that encoding. docs/kv-cli.md has examples.

Exit status: 0 done; 1 an error that retrying will not fix (a key `get` did not find,
a refused request, Compacted, a wrong secret, a bad command line); 2 the cluster is
unavailable (no quorum or no node reachable; nothing was changed); 3 the outcome of a
write is unknown (it may have been applied: read to find out); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from raftcluster.cli.kv_output import ENCODINGS, Shown
from raftcluster.cli.kv_txn import TxnSyntaxError, decode_as, parse_json, parse_text
from raftcluster.cli.output import add_json_flag, emit
from raftcluster.cli.target import ClusterTarget, add_target_options, open_client, resolve
from raftcluster.client.api import Client
from raftcluster.errors import OutcomeUnknown, Unavailable
from raftcluster.transport import AuthenticationFailed, HandshakeFailed, RefusalReason
from statemachine.errors import ClusterError

EXIT_ERROR = 1
EXIT_UNAVAILABLE = 2
EXIT_UNKNOWN = 3
MAX_TXN_FILE_BYTES = 4 * 1024 * 1024


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "kv",
        help="read and write the configuration database (get, put, del, range, txn, watch)",
        description="Read and write the configuration database of a running cluster.",
    )
    commands = parser.add_subparsers(dest="kv_command", metavar="COMMAND", required=True)

    get = _command(commands, "get", "print the value of KEY (exit 1 if it does not exist)")
    get.add_argument("key", metavar="KEY")
    _read_options(get)

    put = _command(commands, "put", "set KEY to VALUE")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    put.add_argument("--prev", action="store_true", help="also show the pair replaced")

    delete = _command(commands, "del", "delete KEY, the keys of [KEY, END), or a prefix")
    _selection(delete)
    delete.add_argument("--prev", action="store_true", help="also show the pairs deleted")

    ranged = _command(commands, "range", "list the keys of [KEY, END), or of a prefix")
    _selection(ranged)
    ranged.add_argument("--limit", type=int, default=0, metavar="N", help="at most N pairs")
    ranged.add_argument("--count-only", action="store_true", help="only count the keys")
    ranged.add_argument("--keys-only", action="store_true", help="keys without values")
    _read_options(ranged)

    txn = _command(commands, "txn", "run a transaction read from FILE (docs/kv-cli.md)")
    txn.add_argument(
        "file", nargs="?", default="-", metavar="FILE",
        help="the transaction, as text lines or JSON (default: standard input)",
    )  # fmt: skip
    txn.add_argument("--format", choices=("auto", "text", "json"), default="auto",
                     help="how FILE is written (auto: JSON if it starts with '{')")  # fmt: skip

    watch = _command(commands, "watch", "print changes as they happen, until Ctrl-C")
    _selection(watch)
    watch.add_argument("--start-revision", type=int, default=0, metavar="REV",
                       help="replay the changes from REV on (default: from now)")  # fmt: skip
    watch.add_argument("--prev", action="store_true", help="show each change's previous pair")

    compact = _command(commands, "compact", "forget the history before REVISION")
    compact.add_argument("revision", type=int, metavar="REVISION")


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    add_target_options(parser)
    encoding = parser.add_mutually_exclusive_group()
    encoding.add_argument("--hex", dest="encoding", action="store_const", const="hex",
                          help="keys and values are given and shown in hex")  # fmt: skip
    encoding.add_argument("--base64", dest="encoding", action="store_const", const="base64",
                          help="keys and values are given and shown in base64")  # fmt: skip
    parser.set_defaults(encoding="text", run=run)
    parser.add_argument("--timeout-ms", type=int, default=10_000, metavar="MS",
                        help="how long to try before giving up (default 10000)")  # fmt: skip
    add_json_flag(parser)
    return parser


def _selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("end", nargs="?", default=None, metavar="END", help="exclusive end")
    parser.add_argument("--prefix", action="store_true", help="every key starting with KEY")


def _read_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", type=int, default=0, metavar="REV",
                        help="read at this past revision (default: the newest)")  # fmt: skip
    parser.add_argument("--stale", action="store_true",
                        help="answer from one node's state, which may miss recent writes "
                             "(default: linearizable)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    target = resolve(args)
    shown = Shown(args.encoding)
    assert args.encoding in ENCODINGS
    try:
        code: int = trio.run(_run, args, target, shown)
    except AuthenticationFailed:
        return _fail(args, "the nodes refused our secret: check the secret file", EXIT_ERROR)
    except HandshakeFailed as e:
        if e.reason == RefusalReason.WRONG_CLUSTER:
            return _fail(args, f"the nodes belong to another cluster: {e}", EXIT_ERROR)
        return _fail(args, str(e), EXIT_UNAVAILABLE)
    except Unavailable as e:
        return _fail(args, f"unavailable: {e}", EXIT_UNAVAILABLE)
    except OutcomeUnknown as e:
        return _fail(args, f"outcome unknown: {e}", EXIT_UNKNOWN)
    except ClusterError as e:
        return _fail(args, str(e), EXIT_ERROR)
    return code


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"raftcluster: error: {message}", file=sys.stderr)
    return code


async def _run(args: argparse.Namespace, target: ClusterTarget, shown: Shown) -> int:
    handler = HANDLERS[args.kv_command]
    async with open_client(target, args.timeout_ms) as client:
        return await handler(client, args, shown)


def _data(args: argparse.Namespace, text: str) -> bytes:
    return decode_as(args.encoding, text)


def _end(args: argparse.Namespace) -> bytes | None:
    return None if args.end is None else _data(args, args.end)


def _consistency(args: argparse.Namespace) -> Any:
    return "stale" if args.stale else "linearizable"


async def _get(client: Client, args: argparse.Namespace, shown: Shown) -> int:
    key = _data(args, args.key)
    kv = await client.get(key, revision=args.revision, consistency=_consistency(args))
    if kv is None:
        if args.json:
            emit(args, {"key": shown.json(key), "found": False}, str)
        else:
            print(f"raftcluster: key {shown.text(key)!r} not found", file=sys.stderr)
        return EXIT_ERROR
    emit(args, {"found": True, **(shown.kv(kv) or {})}, lambda _: shown.text(kv.value))
    return 0


async def _put(client: Client, args: argparse.Namespace, shown: Shown) -> int:
    result = await client.put(_data(args, args.key), _data(args, args.value), prev_kv=args.prev)

    def human(_: object) -> str:
        line = f"OK (revision {result.revision})"
        if result.prev_kv is not None:
            line += f"; it was {shown.text(result.prev_kv.value)}"
        return line

    emit(args, shown.put(result), human)
    return 0


async def _del(client: Client, args: argparse.Namespace, shown: Shown) -> int:
    result = await client.delete(
        _data(args, args.key), _end(args), prefix=args.prefix, prev_kv=args.prev
    )
    lines = [f"deleted {result.deleted} (revision {result.revision})"]
    lines += shown.pairs(result.prev_kvs)
    emit(args, shown.delete(result), lambda _: "\n".join(lines))
    return 0


async def _range(client: Client, args: argparse.Namespace, shown: Shown) -> int:
    result = await client.range(
        _data(args, args.key),
        _end(args),
        prefix=args.prefix,
        limit=args.limit,
        revision=args.revision,
        count_only=args.count_only,
        keys_only=args.keys_only,
        consistency=_consistency(args),
    )
    if args.count_only:
        emit(args, shown.range(result), lambda _: str(result.count))
    else:
        emit(
            args,
            shown.range(result),
            lambda _: "\n".join(shown.range_lines(result, args.keys_only)),
        )
    return 0


async def _txn(client: Client, args: argparse.Namespace, shown: Shown) -> int:
    text = _read_file(args.file)
    as_json = args.format == "json" or (args.format == "auto" and text.lstrip().startswith("{"))
    decode: Callable[[str], bytes] = lambda t: _data(args, t)  # noqa: E731
    if as_json:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            raise TxnSyntaxError(f"{args.file}: not valid JSON: {e}") from None
        built = parse_json(document, decode)
    else:
        built = parse_text(text, decode)
    result = await client.commit(built)
    emit(args, shown.txn(result), lambda _: "\n".join(shown.txn_lines(result)))
    return 0


def _read_file(name: str) -> str:
    if name == "-":
        return sys.stdin.read(MAX_TXN_FILE_BYTES)
    path = Path(name)
    try:
        with path.open(encoding="utf-8") as f:
            return f.read(MAX_TXN_FILE_BYTES)
    except OSError as e:
        raise TxnSyntaxError(f"cannot read {name}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TxnSyntaxError(f"{name} is not UTF-8 text") from None


async def _watch(client: Client, args: argparse.Namespace, shown: Shown) -> int:
    watch = client.watch(
        _data(args, args.key),
        _end(args),
        prefix=args.prefix,
        start_revision=args.start_revision,
        prev_kv=args.prev,
    )
    start = await watch.start()
    if not args.json:
        print(f"# watching from revision {start}; Ctrl-C stops", file=sys.stderr, flush=True)
    async for event in watch:
        if args.json:
            line = json.dumps(shown.event(event), sort_keys=True)
        else:
            line = shown.event_line(event)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0  # not reached: a watch never ends on its own


async def _compact(client: Client, args: argparse.Namespace, shown: Shown) -> int:
    result = await client.compact(args.revision)
    human = f"compacted: revisions before {result.compact_revision} are forgotten"
    emit(args, shown.compact(result), lambda _: human)
    return 0


HANDLERS: dict[str, Callable[[Client, argparse.Namespace, Shown], Awaitable[int]]] = {
    "get": _get,
    "put": _put,
    "del": _del,
    "range": _range,
    "txn": _txn,
    "watch": _watch,
    "compact": _compact,
}
