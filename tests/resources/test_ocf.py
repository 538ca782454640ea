"""The `ocf` resource type, run for real: our counter agent (tests/resources/agents/counter)
and, where Debian's resource-agents is installed, ocf:heartbeat:Dummy, each action a real
process under a real Supervisor."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import trio

from raftcluster.resources.kind import ResourceContext, ResourceFailed, Severity
from raftcluster.resources.ocf import (
    MAX_DETAIL_CHARS,
    MAX_META_DATA_BYTES,
    InvalidMetaData,
    OcfKind,
    ensure_private_dir,
    meta_data,
    parse_meta_data,
    rsctmp_dir,
)
from raftcluster.supervisor.children import Supervisor
from statemachine.groups.messages import ResourceSpec

COUNTER = Path(__file__).resolve().parent / "agents" / "counter"
DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")


@pytest.fixture
async def supervisor(tmp_path: Path, nursery: trio.Nursery) -> Supervisor:
    supervisor = Supervisor(tmp_path / "resources")
    await nursery.start(supervisor.serve)
    return supervisor


def context(
    supervisor: Supervisor,
    params: Mapping[str, str],
    *,
    group: str = "web",
    name: str = "counter",
    epoch: int = 7,
    timeout_ms: int = 5_000,
) -> ResourceContext:
    spec = ResourceSpec(name=name, kind="ocf", params=tuple(sorted(params.items())))
    env = {
        "RAFTCLUSTER_EPOCH": str(epoch),
        "RAFTCLUSTER_GROUP": group,
        "RAFTCLUSTER_RESOURCE": name,
        "RAFTCLUSTER_NODE": "1",
    }
    return ResourceContext(
        node=1,
        group=group,
        spec=spec,
        epoch=epoch,
        timeout_ms=timeout_ms,
        env=env,
        supervisor=supervisor,
    )


def read_env(state: Path) -> dict[str, str]:
    lines = state.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


async def failed(call: object) -> ResourceFailed:
    with pytest.raises(ResourceFailed) as caught:
        await call  # type: ignore[misc]
    return caught.value


def session_members(sid: int) -> list[int]:
    """Every live process whose session is `sid` (field 6 of /proc/<pid>/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found


async def test_start_monitor_stop_and_what_reaches_the_agent(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    kind = OcfKind()
    state = tmp_path / "counter.state"
    params = {"agent": str(COUNTER), "state": str(state), "greeting": "hello, world"}
    kind.check(params)
    ctx = context(supervisor, params)

    before = await failed(kind.monitor(ctx))
    assert before.severity is Severity.SOFT
    assert "monitor: exit 7 (NOT_RUNNING: not running)" in before.detail

    await kind.start(ctx)
    await kind.monitor(ctx)
    env = read_env(state)
    assert env["OCF_RESKEY_state"] == str(state)
    assert env["OCF_RESKEY_greeting"] == "hello, world"
    assert "OCF_RESKEY_agent" not in env
    assert env["OCF_RESOURCE_INSTANCE"] == "web:counter"
    assert env["OCF_RESOURCE_TYPE"] == "counter"
    assert env["OCF_RA_VERSION_MAJOR"] == "1" and env["OCF_RA_VERSION_MINOR"] == "0"
    assert env["OCF_ROOT"] == os.environ.get("OCF_ROOT", "/usr/lib/ocf")
    assert env["RAFTCLUSTER_EPOCH"] == "7" and env["RAFTCLUSTER_GROUP"] == "web"
    assert 0 < int(env["OCF_RESKEY_CRM_meta_timeout"]) <= 5_000

    await kind.start(ctx)  # a start of a running resource changes nothing
    assert (tmp_path / "counter.state.count").read_text().strip() == "1"

    await kind.stop(ctx)
    after = await failed(kind.monitor(ctx))
    assert after.severity is Severity.SOFT and "not running" in after.detail
    await kind.stop(ctx)  # stopping a stopped resource is a success
    assert not state.exists()


async def test_provider_type_under_a_temporary_ocf_root(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    root = tmp_path / "ocf"
    (root / "resource.d" / "test").mkdir(parents=True)
    shutil.copy2(COUNTER, root / "resource.d" / "test" / "counter")
    state = tmp_path / "s"

    by_param = context(
        supervisor, {"agent": "test:counter", "ocf_root": str(root), "state": str(state)}
    )
    await OcfKind().start(by_param)
    env = read_env(state)
    assert env["OCF_ROOT"] == str(root)
    assert env["OCF_RESOURCE_PROVIDER"] == "test"
    assert env["OCF_RESOURCE_TYPE"] == "counter"
    assert "OCF_RESKEY_ocf_root" not in env
    await OcfKind().stop(by_param)

    # ocf:provider:type, OCF_ROOT from the node's environment
    by_env = context(supervisor, {"agent": "ocf:test:counter", "state": str(state)}, epoch=8)
    await OcfKind(environ={"OCF_ROOT": str(root)}).start(by_env)
    assert read_env(state)["RAFTCLUSTER_EPOCH"] == "8"
    await OcfKind(environ={"OCF_ROOT": str(root)}).stop(by_env)

    # the default /usr/lib/ocf holds no provider "test": not installed on this node
    missing = await failed(OcfKind(environ={}).start(by_env))
    assert missing.severity is Severity.HARD
    assert "not installed on this node: /usr/lib/ocf/resource.d/test/counter" in missing.detail


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"agent": ""},
        {"agent": "relative/counter"},
        {"agent": "heartbeat"},
        {"agent": "ocf:heartbeat:Dummy:extra"},
        {"agent": "lsb:heartbeat:Dummy"},
        {"agent": "../x:Dummy"},
        {"agent": "heartbeat:.."},
        {"agent": "heartbeat:Dummy", "ocf_root": "relative"},
        {"agent": "heartbeat:Dummy", "bad-name": "x"},
        {"agent": "heartbeat:Dummy", "naïve": "x"},
        {"agent": "heartbeat:Dummy", "CRM_meta_timeout": "1"},
        {"agent": "heartbeat:Dummy", "state": "a\0b"},
    ],
)
def test_check_refuses_what_can_never_work(params: dict[str, str]) -> None:
    with pytest.raises(ResourceFailed) as caught:
        OcfKind().check(params)
    assert caught.value.severity is Severity.CONFIG


def test_check_is_syntax_only() -> None:
    kind = OcfKind(environ={})
    kind.check({"agent": "ocf:nosuchprovider:Nothing", "x_1": "y"})  # maybe on other nodes
    kind.check({"agent": "/nonexistent/agent"})
    kind.check({"agent": "heartbeat:Dummy", "ocf_root": "/opt/ocf", "state": ""})


async def test_a_missing_or_not_executable_agent_is_hard(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.write_text("#!/bin/sh\nexit 0\n")
    for agent in (tmp_path / "absent", plain, tmp_path):
        ctx = context(supervisor, {"agent": str(agent)})
        for action in (OcfKind().start, OcfKind().monitor, OcfKind().stop):
            caught = await failed(action(ctx))
            assert caught.severity is Severity.HARD, caught.detail
            assert str(agent) in caught.detail


async def test_hard_unconfigured_and_garbage(supervisor: Supervisor, tmp_path: Path) -> None:
    kind = OcfKind()
    state = tmp_path / "s"

    def params(**more: str) -> dict[str, str]:
        return {"agent": str(COUNTER), "state": str(state), **more}

    hard = await failed(kind.start(context(supervisor, params(mode="hard"))))
    assert hard.severity is Severity.HARD
    assert hard.detail == (
        f"ocf agent {COUNTER} start: exit 5 (ERR_INSTALLED: not installed on this node): "
        "mode=hard: the counter's program is not installed here"
    )

    unconfigured = await failed(kind.start(context(supervisor, params(mode="unconfigured"))))
    assert unconfigured.severity is Severity.CONFIG
    assert "validate-all: exit 6 (ERR_CONFIGURED" in unconfigured.detail
    assert unconfigured.detail.endswith("mode=unconfigured: this resource can never work")
    assert not (tmp_path / "s.count").exists()  # validate-all failed: start never ran

    garbage = await failed(kind.start(context(supervisor, params(mode="garbage"))))
    assert garbage.severity is Severity.SOFT
    assert garbage.detail.startswith(f"ocf agent {COUNTER} start: exit 1 (ERR_GENERIC")
    assert garbage.detail.endswith("garbage on stderr ?")
    assert garbage.detail.isprintable() and len(garbage.detail) <= MAX_DETAIL_CHARS
    assert "\ufffd" not in garbage.detail

    long_path = tmp_path / ("x" * 200) / ("y" * 200)
    long_path.mkdir(parents=True)
    shutil.copy2(COUNTER, long_path / "counter")
    long = await failed(
        kind.start(
            context(
                supervisor,
                {"agent": str(long_path / "counter"), "mode": "garbage", "state": str(state)},
            )
        )
    )
    assert len(long.detail) == MAX_DETAIL_CHARS and long.detail.endswith("...")


@pytest.mark.parametrize(
    ("code", "severity", "words"),
    [
        ("1", Severity.SOFT, "exit 1 (ERR_GENERIC: generic error)"),
        ("2", Severity.HARD, "exit 2 (ERR_ARGS: invalid arguments)"),
        ("3", Severity.HARD, "exit 3 (ERR_UNIMPLEMENTED: action not implemented)"),
        ("4", Severity.HARD, "exit 4 (ERR_PERM: insufficient privileges)"),
        ("7", Severity.SOFT, "exit 7 (NOT_RUNNING: not running)"),
        ("8", Severity.SOFT, "exit 8 (RUNNING_PROMOTED: running promoted (promotable resources"),
        ("9", Severity.SOFT, "exit 9 (FAILED_PROMOTED: failed promoted (promotable resources"),
        ("42", Severity.SOFT, "exit 42 (not an OCF exit code)"),
    ],
)
async def test_exit_codes_of_a_start(
    supervisor: Supervisor, tmp_path: Path, code: str, severity: Severity, words: str
) -> None:
    ctx = context(
        supervisor, {"agent": str(COUNTER), "state": str(tmp_path / "s"), "exit_code": code}
    )
    caught = await failed(OcfKind().start(ctx))
    assert caught.severity is severity
    assert caught.detail.startswith(f"ocf agent {COUNTER} start: {words}")
    assert caught.detail.endswith(f"start exits {code} on purpose")


async def test_a_start_killed_by_a_signal_is_soft(supervisor: Supervisor, tmp_path: Path) -> None:
    ctx = context(
        supervisor, {"agent": str(COUNTER), "state": str(tmp_path / "s"), "mode": "killed"}
    )
    caught = await failed(OcfKind().start(ctx))
    assert caught.severity is Severity.SOFT
    assert caught.detail == f"ocf agent {COUNTER} start: killed by SIGKILL"


async def test_validate_all_unimplemented_is_nothing_to_check(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    params = {
        "agent": str(COUNTER),
        "state": str(state),
        "exit_code": "3",
        "fail_action": "validate-all",
    }
    await OcfKind().start(context(supervisor, params))
    assert state.exists()
    params["exit_code"] = "2"
    await OcfKind().stop(context(supervisor, params))
    caught = await failed(OcfKind().start(context(supervisor, params)))
    assert caught.severity is Severity.HARD and "validate-all: exit 2" in caught.detail


async def test_stop_and_monitor_outcomes(supervisor: Supervisor, tmp_path: Path) -> None:
    state = tmp_path / "s"
    base = {"agent": str(COUNTER), "state": str(state)}
    await OcfKind().start(context(supervisor, base))
    for code in ("0", "7"):  # success, not running: both a stopped resource
        await OcfKind().stop(
            context(supervisor, {**base, "exit_code": code, "fail_action": "stop"})
        )
    failing = context(supervisor, {**base, "exit_code": "1", "fail_action": "stop"})
    caught = await failed(OcfKind().stop(failing))
    assert caught.severity is Severity.SOFT
    assert caught.detail.endswith(
        "stop: exit 1 (ERR_GENERIC: generic error): stop exits 1 on purpose"
    )
    monitor = context(supervisor, {**base, "exit_code": "5", "fail_action": "monitor"})
    caught = await failed(OcfKind().monitor(monitor))
    assert caught.severity is Severity.HARD and "monitor: exit 5" in caught.detail


async def test_a_hanging_start_times_out_and_leaves_nothing(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    ctx = context(
        supervisor, {"agent": str(COUNTER), "state": str(state), "mode": "hang"}, timeout_ms=800
    )
    began = time.monotonic()
    caught = await failed(OcfKind().start(ctx))
    took_s = time.monotonic() - began
    assert caught.severity is Severity.SOFT
    assert caught.detail.startswith(f"ocf agent {COUNTER} start timed out after ")
    assert caught.detail.endswith(" ms")
    assert int(caught.detail.split()[-2]) <= 800
    assert 0.5 < took_s < 0.8 + 2.0
    pid = int((tmp_path / "s.pid").read_text())  # the agent leads its session
    assert session_members(pid) == []
    assert not supervisor.alive(ctx.key)


async def test_meta_data_of_the_counter(supervisor: Supervisor, tmp_path: Path) -> None:
    root = tmp_path / "ocf"
    (root / "resource.d" / "test").mkdir(parents=True)
    shutil.copy2(COUNTER, root / "resource.d" / "test" / "counter")
    ctx = context(supervisor, {"agent": "test:counter", "ocf_root": str(root)})
    for xml in (
        await meta_data(ctx),
        await meta_data(str(COUNTER)),
        await meta_data("ocf:test:counter", ocf_root=str(root)),
        await meta_data("test:counter", environ={"OCF_ROOT": str(root)}),
    ):
        info = parse_meta_data(xml)
        assert info.name == "counter" and info.version == "1.0"
        assert [p.name for p in info.parameters] == ["state", "mode", "exit_code", "fail_action"]
        state, mode = info.parameters[:2]
        assert state.required and state.unique and state.default is None
        assert not mode.required and mode.default == "normal" and mode.shortdesc == "Misbehaviour"
        assert {a.name for a in info.actions} >= {"start", "stop", "monitor", "meta-data"}
    missing = await failed(meta_data("nosuch:agent", environ={"OCF_ROOT": str(root)}))
    assert missing.severity is Severity.HARD


@pytest.mark.parametrize(
    ("xml", "words"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><resource-agent name="&a;"/>',
            "entity",
        ),
        (
            '<!DOCTYPE resource-agent [<!ELEMENT x ANY>]><resource-agent name="x"/>',
            "internal subset",
        ),
        ('<!DOCTYPE resource-agent SYSTEM "http://127.0.0.1:1/x.dtd"><r/>', "root is <r>"),
        ('<resource-agent name="x"><unclosed></resource-agent>', "not well-formed"),
        ('<resource-agent name="&x;"/>', "not well-formed"),
        (b'<resource-agent name="\xff"/>', "not UTF-8"),
        ("<resource-agent>" + " " * MAX_META_DATA_BYTES + "</resource-agent>", "over"),
    ],
)
def test_parse_meta_data_refuses(xml: str | bytes, words: str) -> None:
    with pytest.raises(InvalidMetaData, match=words):
        parse_meta_data(xml)


def test_rsctmp_for_a_user_that_is_not_root(tmp_path: Path) -> None:
    assert rsctmp_dir({}, 0) is None  # root: the agents' own default
    assert rsctmp_dir({"HA_RSCTMP": "/x"}, 1000) is None  # the node's environment's
    assert rsctmp_dir({"XDG_RUNTIME_DIR": str(tmp_path)}, 1000) == str(
        tmp_path / "raftcluster-rsctmp"
    )
    assert rsctmp_dir({}, 1000).endswith("/raftcluster-rsctmp-1000")  # type: ignore[union-attr]

    mine = tmp_path / "mine"
    ensure_private_dir(str(mine), os.geteuid())
    assert mine.stat().st_mode & 0o777 == 0o700
    ensure_private_dir(str(mine), os.geteuid())  # again: already there, fine
    with pytest.raises(ResourceFailed) as caught:
        ensure_private_dir(str(mine), os.geteuid() + 1)  # someone else's
    assert caught.value.severity is Severity.HARD
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(ResourceFailed):
        ensure_private_dir(str(shared), os.geteuid())
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(ResourceFailed):
        ensure_private_dir(str(link), os.geteuid())


@pytest.fixture
def dummy() -> Path:
    """Debian's Dummy agent, or a skip whose reason shows in the summary (`pytest -rs`;
    `make test` passes it). A sync fixture: pytest.skip inside a trio test loses its
    reason."""
    if not DUMMY.exists():
        pytest.skip(
            f"{DUMMY} is missing: Debian's resource agents are not installed "
            "(apt-get install resource-agents; .ci/run does it as root)"
        )
    return DUMMY


async def test_debian_dummy(supervisor: Supervisor, tmp_path: Path, dummy: Path) -> None:
    kind = OcfKind()
    state = tmp_path / "dummy.state"
    params = {"agent": "ocf:heartbeat:Dummy", "ocf_root": "/usr/lib/ocf", "state": str(state)}
    kind.check(params)
    ctx = context(supervisor, params, group=tmp_path.name, name="dummy")
    assert (await failed(kind.monitor(ctx))).severity is Severity.SOFT
    await kind.start(ctx)
    assert state.exists()
    await kind.monitor(ctx)
    await kind.stop(ctx)
    assert not state.exists()
    not_running = await failed(kind.monitor(ctx))
    assert "monitor: exit 7 (NOT_RUNNING: not running)" in not_running.detail
    await kind.stop(ctx)

    unwritable = context(
        supervisor, {**params, "state": str(tmp_path / "no" / "such" / "dir" / "s")}, name="d2"
    )
    caught = await failed(kind.start(unwritable))
    assert caught.severity is Severity.HARD  # validate-all: OCF_ERR_ARGS
    assert "validate-all: exit 2 (ERR_ARGS" in caught.detail and "not writable" in caught.detail

    info = parse_meta_data(await meta_data(ctx))
    assert info.name == "Dummy"
    assert {"state", "fake"} <= {p.name for p in info.parameters}


async def test_debian_dummy_keeps_its_state_in_ha_rsctmp(
    supervisor: Supervisor, dummy: Path
) -> None:
    """No `state` parameter: Dummy keeps it in $HA_RSCTMP (root: its own default; anyone
    else: ours, since the default is root's only)."""
    euid = os.geteuid()
    rsctmp = rsctmp_dir(os.environ, euid) or os.environ.get("HA_RSCTMP") or "/run/resource-agents"
    if euid == 0 and not os.path.isdir(rsctmp):
        pytest.skip(f"{rsctmp} is missing (it is made at boot by systemd-tmpfiles)")
    group = f"t{os.getpid()}-{time.monotonic_ns()}"
    state = Path(rsctmp) / f"Dummy-{group}:dummy.state"
    ctx = context(supervisor, {"agent": "ocf:heartbeat:Dummy"}, group=group, name="dummy")
    kind = OcfKind()
    try:
        await kind.start(ctx)
        assert state.exists()
        await kind.monitor(ctx)
    finally:
        await kind.stop(ctx)
    assert not state.exists()
