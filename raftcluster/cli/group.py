"""`raftcluster group ...`: the cluster service's resource groups from a shell.

    group create NAME [--preferred 1,2] [--failback immediate] [--offline] ...
    group delete NAME                      group set NAME KEY=VALUE...
    group add-resource GROUP NAME --kind KIND [--param K=V]... [--monitor-interval-ms N]
    group remove-resource GROUP NAME       group move NAME [--to NODE]
    group online NAME                      group offline NAME
    group status [NAME]                    group why NAME
    group simulate [--node-down N] [--drain N] [--move GROUP --to N]
    group apply FILE.toml [--prune] [--dry-run]

Each finds the cluster from `--cluster DIR` or `--endpoints` (raftcluster/cli/target.py),
runs through the client API (`client.groups`, raftcluster/client/groups.py) and prints
a table or lines for people, or one JSON document with `--json`. Errors print
`raftcluster: error: ...` and exit 1. docs/groups.md, "Operator's guide", has examples.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from raftcluster.cli.client_command import CommandFailed, add_client_options, run_client_command
from raftcluster.cli.group_output import (
    apply_text,
    group_details,
    groups_table,
    placement_text,
    to_json,
    why_text,
)
from raftcluster.cli.output import emit
from raftcluster.client.api import Client
from raftcluster.client.group_file import GROUP_FIELDS, RESOURCE_FIELDS, from_text
from statemachine.groups.messages import Done, GroupSpec, ResourceSpec

# Options of `group create` named otherwise than their GroupSpec field.
_SHORT_OPTIONS = {"preferred_owners": "--preferred", "possible_owners": "--possible"}


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "group",
        help="define, move and explain the cluster service's resource groups",
        description="The cluster service's resource groups: define them, move them, "
        "see where they run and why.",
    )
    commands = parser.add_subparsers(dest="group_command", metavar="COMMAND", required=True)

    create = _command(commands, "create", "define a group (wanted online unless --offline)")
    create.add_argument("name", metavar="NAME")
    for field, kind in GROUP_FIELDS.items():
        names = [f"--{field.replace('_', '-')}"]
        if field in _SHORT_OPTIONS:
            names.insert(0, _SHORT_OPTIONS[field])
        create.add_argument(*names, dest=field, metavar="VALUE", default=None,
                            help=f"GroupSpec.{field} ({kind.value})")  # fmt: skip
    create.add_argument("--offline", action="store_true", help="define it offline")

    delete = _command(commands, "delete", "delete an offline group")
    delete.add_argument("name", metavar="NAME")

    setter = _command(commands, "set", "change a group's policies: KEY=VALUE (GroupSpec fields)")
    setter.add_argument("name", metavar="NAME")
    setter.add_argument("settings", nargs="+", metavar="KEY=VALUE",
                        help=f"one of: {', '.join(GROUP_FIELDS)}; lists as 1,2")  # fmt: skip

    add = _command(commands, "add-resource", "add a resource to an offline group")
    add.add_argument("group", metavar="GROUP")
    add.add_argument("resource", metavar="NAME")
    add.add_argument("--kind", required=True, help="process, ocf, or a registered kind")
    add.add_argument("--param", action="append", default=[], metavar="K=V",
                     help="a parameter (repeat the option for more)")  # fmt: skip
    for field, kind in RESOURCE_FIELDS.items():
        if field not in ("kind", "params"):
            add.add_argument(f"--{field.replace('_', '-')}", dest=field, type=int, default=None,
                             metavar="N", help=f"ResourceSpec.{field} ({kind.value})")  # fmt: skip

    remove = _command(commands, "remove-resource", "remove a resource from an offline group")
    remove.add_argument("group", metavar="GROUP")
    remove.add_argument("resource", metavar="NAME")

    move = _command(commands, "move", "move a running group (a planned move)")
    move.add_argument("name", metavar="NAME")
    move.add_argument("--to", type=int, default=0, metavar="NODE",
                      help="the node (default: the best other node)")  # fmt: skip

    for word, what in (("online", "want a group online"), ("offline", "want a group offline")):
        _command(commands, word, what).add_argument("name", metavar="NAME")

    status = _command(commands, "status", "every group, or one group in detail")
    status.add_argument("name", nargs="?", default=None, metavar="NAME")

    why = _command(commands, "why", "a group's last placement decision, with the scores")
    why.add_argument("name", metavar="NAME")

    simulate = _command(commands, "simulate", "where every group would go (changes nothing)")
    simulate.add_argument("--node-down", type=int, default=0, metavar="N")
    simulate.add_argument("--drain", type=int, default=0, metavar="N")
    simulate.add_argument("--move", default="", metavar="GROUP")
    simulate.add_argument("--to", type=int, default=0, metavar="N",
                          help="with --move (default: the best other node)")  # fmt: skip

    apply = _command(commands, "apply", "make the groups what a group file says")
    apply.add_argument("file", metavar="FILE.toml")
    apply.add_argument("--prune", action="store_true",
                       help="delete the groups the file does not name")  # fmt: skip
    apply.add_argument("--dry-run", action="store_true", help="only say what it would do")


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text
    )
    add_client_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    return run_client_command(args, HANDLERS[args.group_command])


def _done(args: argparse.Namespace, done: Done, what: str) -> int:
    emit(args, {"ok": True, "revision": done.revision, "what": what},
         lambda _: f"OK: {what} (groups revision {done.revision})")  # fmt: skip
    return 0


async def _create(client: Client, args: argparse.Namespace) -> int:
    fields = {
        field: from_text("group create", field, kind, getattr(args, field))
        for field, kind in GROUP_FIELDS.items()
        if getattr(args, field) is not None
    }
    spec = GroupSpec(args.name, **fields)
    done = await client.groups.create(spec, online=not args.offline)
    state = "offline" if args.offline else "online"
    return _done(args, done, f"group {args.name} created, wanted {state}")


async def _delete(client: Client, args: argparse.Namespace) -> int:
    return _done(args, await client.groups.delete(args.name), f"group {args.name} deleted")


async def _set(client: Client, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for setting in args.settings:
        key, equals, text = setting.partition("=")
        if not equals:
            raise CommandFailed(f"{setting!r}: write KEY=VALUE")
        kind = GROUP_FIELDS.get(key)
        changes[key] = text if kind is None else from_text("group set", key, kind, text)
    done = await client.groups.set(args.name, **changes)
    return _done(args, done, f"group {args.name} changed: {', '.join(args.settings)}")


async def _add_resource(client: Client, args: argparse.Namespace) -> int:
    params: dict[str, str] = {}
    for param in args.param:
        key, equals, value = param.partition("=")
        if not equals or not key:
            raise CommandFailed(f"--param {param!r}: write NAME=VALUE")
        params[key] = value
    numbers = {f: getattr(args, f) for f in RESOURCE_FIELDS if f not in ("kind", "params")}
    given = {f: v for f, v in numbers.items() if v is not None}
    resource = ResourceSpec(args.resource, args.kind, tuple(sorted(params.items())), **given)
    done = await client.groups.add_resource(args.group, resource)
    return _done(args, done, f"resource {args.resource} added to group {args.group}")


async def _remove_resource(client: Client, args: argparse.Namespace) -> int:
    done = await client.groups.remove_resource(args.group, args.resource)
    return _done(args, done, f"resource {args.resource} removed from group {args.group}")


async def _move(client: Client, args: argparse.Namespace) -> int:
    done = await client.groups.move(args.name, args.to)
    where = f"node {args.to}" if args.to else "the best other node"
    return _done(args, done, f"group {args.name} moving to {where}")


async def _online(client: Client, args: argparse.Namespace) -> int:
    return _done(args, await client.groups.online(args.name), f"group {args.name} wanted online")


async def _offline(client: Client, args: argparse.Namespace) -> int:
    done = await client.groups.offline(args.name)
    return _done(args, done, f"group {args.name} wanted offline")


async def _status(client: Client, args: argparse.Namespace) -> int:
    if args.name is None:
        groups = await client.groups.list()
        emit(args, {"groups": to_json(groups)}, lambda _: groups_table(groups))
    else:
        group = await client.groups.get(args.name)
        emit(args, to_json(group), lambda _: group_details(group))
    return 0


async def _why(client: Client, args: argparse.Namespace) -> int:
    decision = await client.groups.why(args.name)
    emit(args, to_json(decision), lambda _: f"group {args.name}\n{why_text(decision)}")
    return 0


async def _simulate(client: Client, args: argparse.Namespace) -> int:
    if args.to and not args.move:
        raise CommandFailed("--to NODE goes with --move GROUP")
    placement = await client.groups.simulate(
        node_down=args.node_down, drain=args.drain, move_group=args.move, move_to=args.to
    )
    asked = [f"node {args.node_down} went down"] if args.node_down else []
    asked += [f"node {args.drain} were drained"] if args.drain else []
    where = f"node {args.to}" if args.to else "the best other node"
    asked += [f"{args.move} moved to {where}"] if args.move else []
    said = " and ".join(asked) or "nothing changed"
    emit(args, {"if": said, **to_json(placement)}, lambda _: placement_text(placement, said))
    return 0


async def _apply(client: Client, args: argparse.Namespace) -> int:
    result = await client.groups.apply(args.file, prune=args.prune, dry_run=args.dry_run)
    emit(args, to_json(result), lambda _: apply_text(result, args.file))
    return 0


HANDLERS: dict[str, Callable[[Client, argparse.Namespace], Awaitable[int]]] = {
    "create": _create,
    "delete": _delete,
    "set": _set,
    "add-resource": _add_resource,
    "remove-resource": _remove_resource,
    "move": _move,
    "online": _online,
    "offline": _offline,
    "status": _status,
    "why": _why,
    "simulate": _simulate,
    "apply": _apply,
}
