"""Global updates: every handler once per event, in order; a durable cursor (real files)
survives a restart; a gap is reported as `EventsCompacted`, never skipped silently."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from raftcluster.groups.cursor import CursorDamaged, CursorFile
from raftcluster.groups.updates import EventsCompacted, GlobalUpdates, MemoryCursor, Update
from statemachine.groups.messages import NodeChanged, NodeState


def event(revision: int) -> NodeChanged:
    return NodeChanged(revision, 2, NodeState.UP, revision * 10)


@attrs.define
class Recorder:
    name: str
    log: list[tuple[str, object]]

    def __call__(self, update: Update) -> None:
        key = update.revision if isinstance(update, NodeChanged) else update
        self.log.append((self.name, key))


def test_each_handler_once_per_event_in_order() -> None:
    log: list[tuple[str, object]] = []
    updates = GlobalUpdates(MemoryCursor())
    updates.on_update(Recorder("a", log))
    updates.on_update(Recorder("b", log))
    updates.deliver([event(1), event(2)])
    updates.deliver([event(2), event(3)])  # 2 again (a replayed page): not redelivered
    assert log == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert updates.handled == 3 and updates.next_revision == 4


def test_the_cursor_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "groups-cursor"
    log: list[tuple[str, object]] = []
    first = GlobalUpdates(CursorFile(path))
    first.on_update(Recorder("a", log))
    first.deliver([event(1), event(2), event(3)])
    assert path.read_text() == "3\n"
    assert not path.with_name("groups-cursor.tmp").exists()
    # The node restarts: a new dispatcher on the same file resumes after 3, and the shell
    # asks for events from there; a replay of older events is skipped.
    second = GlobalUpdates(CursorFile(path))
    second.on_update(Recorder("a2", log))
    assert second.next_revision == 4
    second.deliver([event(2), event(3), event(4)])
    assert log == [("a", 1), ("a", 2), ("a", 3), ("a2", 4)]


def test_a_handler_that_raises_leaves_the_event_to_be_delivered_again(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    log: list[tuple[str, object]] = []
    updates = GlobalUpdates(CursorFile(path))
    updates.on_update(Recorder("a", log))

    def crash(update: Update) -> None:
        if isinstance(update, NodeChanged) and update.revision == 2:
            raise RuntimeError("handler crashed")

    updates.on_update(crash)
    with pytest.raises(RuntimeError):
        updates.deliver([event(1), event(2)])
    assert CursorFile(path).read() == 1
    again = GlobalUpdates(CursorFile(path))
    again.on_update(Recorder("b", log))
    again.deliver([event(2)])
    assert log == [("a", 1), ("a", 2), ("b", 2)]


def test_a_gap_is_reported_as_compacted_before_the_next_event(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    CursorFile(path).save(3)
    log: list[tuple[str, object]] = []
    updates = GlobalUpdates(CursorFile(path))
    updates.on_update(Recorder("a", log))
    # Down while 4..6 were compacted away: the first event seen is 7.
    updates.deliver([event(7), event(8)])
    assert log == [("a", EventsCompacted(4, 6)), ("a", 7), ("a", 8)]
    assert CursorFile(path).read() == 8


def test_a_compacted_refusal_is_reported_and_moves_the_cursor(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    log: list[tuple[str, object]] = []
    updates = GlobalUpdates(CursorFile(path))
    updates.on_update(Recorder("a", log))
    updates.deliver([event(1)])
    # GetEvents(from 2) was refused COMPACTED with 10 as the oldest retained.
    updates.compacted(10)
    assert log == [("a", 1), ("a", EventsCompacted(2, 9))]
    assert updates.next_revision == 10 and CursorFile(path).read() == 9
    updates.compacted(10)  # nothing more is missing
    updates.deliver([event(10)])
    assert log[-1] == ("a", 10) and len(log) == 3


def test_a_damaged_cursor_file_is_an_error_not_a_restart_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    assert CursorFile(path).read() == 0  # none yet
    path.write_text("12")  # torn: no newline
    with pytest.raises(CursorDamaged):
        CursorFile(path).read()
    path.write_text("x\n")
    with pytest.raises(CursorDamaged):
        GlobalUpdates(CursorFile(path))
