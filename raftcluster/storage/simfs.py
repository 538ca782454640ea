"""A directory in memory with the crash semantics of a real disk, for tests and simulation.

What survives a crash (`SimDirectory.crash`):
- a file's bytes up to its last `sync()` survive; of the bytes appended since, a prefix
  survives (possibly none, possibly all, possibly cutting a record in two); a file cut
  (truncated) since its last sync is either cut or not;
- creations, renames and removals since the last directory `sync()` survive as a
  prefix of their order (a journaling file system orders its metadata).
Which prefix is not decided here: `crash` asks a `choose(n) -> 0..n` function, so the
caller's seeded generator or Hypothesis decides, and the same choices give the same
disk. The directory has no randomness of its own.

Disk faults, each at a place the caller names (still no randomness here):
- `flip_bit(name, bit)` and `zero_sector(name, sector)` damage durable bytes of a file;
  the next `read` sees the damage (a latent sector error, found when the data is read);
- `fail_next_write(errno)` and `fail_next_sync(errno)` arm a one-shot failure: the next
  file write, or the next fsync (of a file, of the directory, or the one that completes
  a truncate), raises `OSError(errno, ...)` (EIO, ENOSPC...). A failed write adds
  nothing; a failed fsync makes nothing durable, so a later crash decides what of the
  unsynced data and names survives, as for a power cut;
- `wipe()`: the whole directory is lost (the disk replaced by an empty one).

Two more hooks for tests: `observer` sees every mutating operation before it happens
(to take `clone()`s at every write boundary) and `fail_at_op` makes the n-th mutating
operation raise `SimulatedCrash` (power lost in the middle of `sync()`; a write that
is interrupted is applied, unsynced, so `crash` decides how much of it survives).

Cost: a sync records the durable length of a file (appends only), it does not copy the
file, so a persist cycle costs the same at the start and at the end of a segment.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

import attrs

from raftcluster.storage.errors import StorageLocked
from raftcluster.storage.fs import File

Choose = Callable[[int], int]

# The unit a disk writes atomically and loses as a whole (a latent sector error).
SECTOR_BYTES = 512


class SimulatedCrash(Exception):
    """Raised by a `SimDirectory` operation chosen with `fail_at_op`: the power went."""


@attrs.frozen
class SimOp:
    """A mutating operation: write, sync, create, truncate, remove, rename, sync_dir."""

    kind: str
    name: str = ""
    data: bytes = b""
    dst: str = ""  # rename target
    size: int = 0  # truncate size


@attrs.define(eq=False)
class _Inode:
    """A file's bytes now, and which of them are durable.

    The durable content is `data[:durable_bytes] + cut_durable`. Files only grow by
    appends, so a sync records a length instead of copying the file (a copy per sync
    made a long simulation quadratic in the size of its segments). `cut_durable` holds
    the durable bytes that a cut (truncate) removed before its own sync: a crash may
    undo the cut.
    """

    data: bytearray = attrs.field(factory=bytearray)
    durable_bytes: int = 0
    cut_durable: bytes = b""

    def copy(self) -> _Inode:
        return _Inode(bytearray(self.data), self.durable_bytes, self.cut_durable)

    def unsynced(self) -> bool:
        return len(self.data) != self.durable_bytes or bool(self.cut_durable)


class _SimFile:
    def __init__(self, directory: SimDirectory, name: str, inode: _Inode) -> None:
        self._dir, self._name, self._inode = directory, name, inode
        self._open = True

    def write(self, data: bytes) -> None:
        assert self._open, "write to a closed file"
        data = bytes(data)
        self._dir._mutate("write", self._name, self._write, data, data=data)

    def _write(self, data: bytes) -> None:
        self._inode.data += data

    def sync(self) -> None:
        assert self._open, "sync of a closed file"
        self._dir._mutate("sync", self._name, self._dir._sync_file, self._inode)

    def close(self) -> None:
        self._open = False


class SimDirectory:
    """A flat directory held in memory. Deterministic: no clock, no randomness."""

    def __init__(self, path: str = "sim") -> None:
        self.path = path
        self._files: dict[str, _Inode] = {}
        self._durable_names: dict[str, _Inode] = {}
        self._pending_names: list[_NameOp] = []  # namespace changes since the last dir sync
        self._locked = False
        self.observer: Callable[[SimOp], None] | None = None
        self.fail_at_op: int | None = None  # raise SimulatedCrash at this operation number
        self.ops = 0  # mutating operations so far
        self._failing_write: int | None = None  # errno of the next write, armed
        self._failing_sync: int | None = None  # errno of the next fsync, armed
        # A disk that lies (a write-back cache that ignores flushes), for planting a bug
        # in the simulator only: with N > 0, fsyncs return at once and make nothing
        # durable until N of them have piled up; then everything written is.
        self.lying_syncs = 0
        self._lied = 0

    # -- Directory protocol ----------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._files)

    def read(self, name: str) -> bytes:
        return bytes(self._inode(name).data)

    def size(self, name: str) -> int:
        return len(self._inode(name).data)

    def create(self, name: str) -> File:
        if name in self._files:
            raise FileExistsError(name)
        inode = _Inode()
        self._mutate("create", name, self._link, name, inode)
        return _SimFile(self, name, inode)

    def append(self, name: str) -> File:
        return _SimFile(self, name, self._inode(name))

    def truncate(self, name: str, size: int) -> None:
        inode = self._inode(name)
        self._mutate("truncate", name, _cut, inode, size, size=size)
        self._mutate("sync", name, _sync_inode, inode)

    def remove(self, name: str) -> None:
        self._inode(name)
        self._mutate("remove", name, self._unlink, name)

    def rename(self, src: str, dst: str) -> None:
        self._inode(src)
        self._mutate("rename", src, self._move, src, dst, dst=dst)

    def sync(self) -> None:
        self._mutate("sync_dir", "", self._sync_dir)

    def lock(self) -> None:
        if self._locked:
            raise StorageLocked(self.path, "another storage on this simulated directory")
        self._locked = True

    def unlock(self) -> None:
        self._locked = False

    # -- crash and copies ------------------------------------------------------------

    def crash(self, choose: Choose) -> None:
        """Lose what a power cut may lose, as `choose` decides; release the lock.

        `choose(n)` must return 0..n. It is called first once for the namespace changes
        not yet synced (how many survive, in order), then, for each surviving file in
        name order: if it was cut since its last sync, once with 1 (0: the cut is
        undone, with anything appended after it); then, unless the cut was undone, once
        for how many of its unsynced appended bytes survive.
        Armed failures (`fail_next_write`, `fail_next_sync`, `fail_at_op`) are disarmed.
        """
        names = dict(self._durable_names)
        kept = _pick(choose, len(self._pending_names))
        for op in self._pending_names[:kept]:
            _replay_name_op(names, op)
        for name in sorted(names):
            inode = names[name]
            if inode.cut_durable and not _pick(choose, 1):
                inode.data[inode.durable_bytes :] = inode.cut_durable
            else:
                extra = len(inode.data) - inode.durable_bytes
                del inode.data[inode.durable_bytes + _pick(choose, extra) :]
            _sync_inode(inode)
        self._files = names
        self._durable_names = dict(names)
        self._pending_names = []
        self._locked = False
        self.disarm()

    def clone(self) -> SimDirectory:
        """An independent copy, unlocked, without observer or planned failure."""
        other = SimDirectory(self.path)
        copies = {id(inode): inode.copy() for inode in self._all_inodes()}
        other._files = {n: copies[id(i)] for n, i in self._files.items()}
        other._durable_names = {n: copies[id(i)] for n, i in self._durable_names.items()}
        other._pending_names = [
            _NameOp(op.kind, op.name, op.dst, None if op.inode is None else copies[id(op.inode)])
            for op in self._pending_names
        ]
        return other

    def unsynced(self) -> bool:
        """Whether anything (data or names) is not durable yet."""
        if self._pending_names:
            return True
        return any(inode.unsynced() for inode in self._files.values())

    # -- disk faults -----------------------------------------------------------------

    def synced_size(self, name: str) -> int:
        """How many bytes at the start of `name` are durable (what `flip_bit` and
        `zero_sector` may damage): its size at its last sync, less if cut since."""
        return self._inode(name).durable_bytes

    def flip_bit(self, name: str, bit: int) -> None:
        """Invert bit `bit` (byte `bit // 8`, bit `bit % 8` from the least significant)
        of the durable bytes of `name`. The next `read` sees it."""
        inode = self._inode(name)
        if not 0 <= bit < 8 * inode.durable_bytes:
            raise ValueError(
                f"bit {bit} is outside the {inode.durable_bytes} durable bytes of {name}"
            )
        inode.data[bit // 8] ^= 1 << (bit % 8)

    def zero_sector(self, name: str, sector: int) -> None:
        """Zero the durable bytes of `name` in sector `sector` (bytes `sector *
        SECTOR_BYTES` up to the next sector or the end of the durable bytes): a sector
        the disk lost, read back as zeros."""
        inode = self._inode(name)
        start = sector * SECTOR_BYTES
        if not 0 <= start < inode.durable_bytes:
            raise ValueError(
                f"sector {sector} is outside the {inode.durable_bytes} durable bytes of {name}"
            )
        end = min(start + SECTOR_BYTES, inode.durable_bytes)
        inode.data[start:end] = bytes(end - start)

    def fail_next_write(self, code: int) -> None:
        """The next write of any file raises `OSError(code)` and writes nothing."""
        self._failing_write = _errno(code)

    def fail_next_sync(self, code: int) -> None:
        """The next fsync (of a file, of the directory, or completing a truncate)
        raises `OSError(code)` and makes nothing durable."""
        self._failing_sync = _errno(code)

    def wipe(self) -> None:
        """The directory is lost entirely, synced or not, as if the disk were replaced by
        an empty one. The lock goes too; armed failures are disarmed."""
        self._files, self._durable_names, self._pending_names = {}, {}, []
        self._locked = False
        self.disarm()

    # -- internals -------------------------------------------------------------------

    def disarm(self) -> None:
        """Forget every planned failure (a power cut, a failing write or fsync)."""
        self.fail_at_op = None
        self._failing_write = self._failing_sync = None

    def _all_inodes(self) -> list[_Inode]:
        seen: dict[int, _Inode] = {}
        linked = [op.inode for op in self._pending_names if op.inode is not None]
        for inode in [*self._files.values(), *self._durable_names.values(), *linked]:
            seen[id(inode)] = inode
        return list(seen.values())

    def _inode(self, name: str) -> _Inode:
        try:
            return self._files[name]
        except KeyError:
            raise FileNotFoundError(name) from None

    def _mutate(
        self, kind: str, name: str, apply: Callable[..., None], *args: object, **op: object
    ) -> None:
        """Operation `kind` on file `name` ("" for the directory): `apply(*args)`, unless a
        planned failure comes first. The observer sees it as `SimOp(kind, name, **op)` (built
        only for an observer: a persist makes several operations)."""
        if self.observer is not None:
            self.observer(SimOp(kind, name, **op))  # type: ignore[arg-type]
        self.ops += 1
        if self.fail_at_op is not None and self.ops >= self.fail_at_op:
            if kind == "write":  # the interrupted write reached the page cache
                apply(*args)
            raise SimulatedCrash(f"simulated power cut at operation {self.ops} ({kind})")
        code = None
        if kind == "write" and self._failing_write is not None:
            code, self._failing_write = self._failing_write, None
        elif (kind == "sync" or kind == "sync_dir") and self._failing_sync is not None:
            code, self._failing_sync = self._failing_sync, None
        if code is not None:
            where = f"{self.path}/{name}" if name else self.path
            raise OSError(code, os.strerror(code), where)
        apply(*args)

    def _link(self, name: str, inode: _Inode) -> None:
        self._files[name] = inode
        self._pending_names.append(_NameOp("link", name, "", inode))

    def _unlink(self, name: str) -> None:
        del self._files[name]
        self._pending_names.append(_NameOp("remove", name, "", None))

    def _move(self, src: str, dst: str) -> None:
        self._files[dst] = self._files.pop(src)
        self._pending_names.append(_NameOp("rename", src, dst, None))

    def _sync_names(self) -> None:
        self._durable_names = dict(self._files)
        self._pending_names = []

    def _sync_file(self, inode: _Inode) -> None:
        if not self._lie():
            _sync_inode(inode)

    def _sync_dir(self) -> None:
        if not self._lie():
            self._sync_names()

    def _lie(self) -> bool:
        """With `lying_syncs`: whether this sync only pretends (the Nth flushes all)."""
        if not self.lying_syncs:
            return False
        self._lied += 1
        if self._lied < self.lying_syncs:
            return True
        self._lied = 0
        for inode in self._all_inodes():
            _sync_inode(inode)
        self._sync_names()
        return True


def _cut(inode: _Inode, size: int) -> None:
    if size < inode.durable_bytes:  # durable bytes go: keep them until the cut is synced
        inode.cut_durable = bytes(inode.data[size : inode.durable_bytes]) + inode.cut_durable
        inode.durable_bytes = size
    del inode.data[size:]


def _sync_inode(inode: _Inode) -> None:
    inode.durable_bytes = len(inode.data)
    inode.cut_durable = b""


@attrs.frozen
class _NameOp:
    kind: str  # link, remove, rename
    name: str
    dst: str
    inode: _Inode | None  # the file a link creates


def _replay_name_op(names: dict[str, _Inode], op: _NameOp) -> None:
    if op.kind == "link":
        assert op.inode is not None
        names[op.name] = op.inode
    elif op.kind == "remove":
        del names[op.name]
    else:
        names[op.dst] = names.pop(op.name)


def _pick(choose: Choose, n: int) -> int:
    picked = choose(n)
    if not 0 <= picked <= n:
        raise ValueError(f"choose({n}) returned {picked}, outside 0..{n}")
    return picked


def _errno(code: int) -> int:
    if code not in errno.errorcode:
        raise ValueError(f"{code} is not an errno value (errno.EIO, errno.ENOSPC...)")
    return code
