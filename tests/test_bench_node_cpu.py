"""bench/node_cpu.py's layer summary: each profiled function's time lands in its layer,
a built-in's in its callers' layers."""

from __future__ import annotations

import cProfile
import pstats

from bench.node_cpu import _print_layers, layer_of
from raftcluster.transport.framing import FrameParser, FrameSealer


def test_files_map_to_their_layers() -> None:
    assert layer_of("/x/raftcluster/raft/core.py") == "raft core"
    assert layer_of("/x/raftcluster/node/replica.py") == "replica and cycle"
    assert layer_of("/x/raftcluster/node/driver.py") == "node driver and runtime"
    assert layer_of("/x/raftcluster/transport/connection.py") == "transport"
    assert layer_of("/x/statemachine/codec.py") == "codec"
    assert layer_of("/x/statemachine/kv/store.py") == "state machine"
    assert layer_of("/v/site-packages/trio/_core/_run.py") == "trio"
    assert layer_of("~") == "python"


def test_builtins_count_for_their_callers_layer(capsys) -> None:  # type: ignore[no-untyped-def]
    sealer, parser = FrameSealer(), FrameParser(1024)
    sealer.authenticate(b"k" * 32)
    parser.authenticate(b"k" * 32, 1024)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(200):
        parser.feed(sealer.seal(b"x" * 100))
        assert parser.next_frame() == b"x" * 100
    profile.disable()
    _print_layers(pstats.Stats(profile), 200)
    rows = capsys.readouterr().out.splitlines()[1:]
    calls = {row.split("calls  ")[1]: float(row.split()[3]) for row in rows}
    # feed, seal, next_frame, two tags and their built-ins (sha256 copies, updates and
    # digests, to_bytes, len, bytes...): all the transport's, per frame
    assert calls["transport"] > 20
    # (only `profile.disable`, called by this test, is left to "python")
    assert calls.get("python", 0) < 0.1
