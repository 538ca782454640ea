"""The search for a linearization of one partition: Wing & Gong with Lowe's improvements.

Every call and return is an entry of a doubly linked list in real-time order. The
*window* is the call entries before the first return entry still in the list: the
operations that may take effect next. Linearizing one *lifts* its call and return
entries out of the list; backtracking *unlifts* them (dancing links, so both are O(1)).
A configuration is (set of linearized operations, model state); states are interned to
small ids, and every configuration entered is remembered so that none is explored twice
(Lowe's cache). The cache holds a 128-bit *fingerprint* of each configuration, not the
configuration: each item and each state id gets a fixed pseudo-random 128-bit number, and
a configuration's fingerprint is the XOR of its items' numbers and its state's (Zobrist
hashing), updated by one XOR as an item is linearized or taken back. A fingerprint costs
the same 48-byte int however long the partition, where the set itself as an int bitset
costs n/8 bytes; two configurations share one with probability 2**-128, so over the
most a cache can hold (`MAX_MEMORY` / `ENTRY_BYTES`, about 2**25) the chance that any
two do is below 2**-77. Such a clash could only make the search skip a configuration
it has not explored (never accept an illegal one): an `ok` always comes with a
linearization each step of which the model took. The numbers come from a fixed seed, so
the search stays a pure function of its input. The history is linearizable when no
return entry is left: everything still in the list is pending (`info`) and may never have
happened.

The cache's memory is budgeted (`max_memory`, bytes): the search counts what it keeps
(cache entries, interned states, memoized transitions, each at a bound on its size,
`ENTRY_BYTES` etc. below) and gives up (UNKNOWN) when that passes the budget, before
the machine runs out. The count is a function of the search alone, not of the
allocator, so a budget gives the same verdict on every machine. (The models' reductions
of pending operations, which shrink the search itself, are in chaos.checker.models.)

Two reductions on top, both exact (they never change the verdict):
- a *read-only* operation (the model promises its step never changes the state) that is
  legal in the current state is linearized at once, and no alternative is tried at that
  configuration: moving it earlier keeps every later state and every real-time
  constraint, since everything that returned before its call is already linearized.
  A read-only operation legal in exactly one state (`Item.only_in`) is found by looking
  the state up rather than by calling the model;
- pending operations with equal input and output are interchangeable once called, so
  only the earliest unlinearized one of such a group is tried.

The order in which candidates are tried is a heuristic, which changes the time and never
the verdict: when the item whose return ends the window is a read legal in one state
only, an item leading to that state comes first, and failing one, a pending item (the
state may need several steps, and pending items are the ones left untried longest);
otherwise items that returned, in order of call, then pending ones (a linearization
seldom needs them).

This module is a pure function of its inputs: no clock (the caller passes a `Deadline`),
no I/O. Transitions are memoized per (operation, state), so the model's `step` runs once
per pair however often the search comes back.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, NamedTuple, Protocol

import attrs

Step = Callable[[Any, Any, Any], tuple[bool, Any]]


class _Anywhere:
    def __repr__(self) -> str:
        return "ANYWHERE"


# `Item.only_in` when the operation is not known to be legal in exactly one state.
ANYWHERE: Final[Any] = _Anywhere()

# How many configurations are entered between two looks at the deadline.
POLL_EVERY = 512
# The default memory budget of one search, in bytes: 4 GiB, a sixth of the 23 GiB of the
# project's machines, so that the two checks a `-n 2` test run may hold at once leave
# room for everything else; porcupine took 1 to 7 GiB on the hard histories it decides
# in 60 s (docs/checker.md, "Limits"), and our reductions need far less for those.
MAX_MEMORY = 4 << 30
# What the search charges against the budget: bounds on what CPython 3.11 (64-bit)
# allocates, checked with tracemalloc by tests/test_checker_search.py.
# A cache entry: a 128-bit int (48 bytes) and its share of the set's table: 16 bytes a
# slot, at least 3/10 of slots free once the table passes 50,000 entries (it then doubles
# when 3/5 full), so up to 53 bytes, and while it doubles the old table too (27 more);
ENTRY_BYTES = 128
# a fixed part for what does not grow with the configurations: the entries' lists, and the
# set while it is small (below 50,000 entries it quadruples, up to 181 bytes an entry);
BASE_BYTES = 4 << 20
# a model state met: its intern table entry, id, fingerprint number and per-state list
# slots, plus the state itself (`state_bytes`);
STATE_BYTES = 240
# a memoized transition (item, state id) -> state id: a dict entry and its int.
MEMO_BYTES = 100
# The fingerprints' width (see above) and the seed of their numbers.
FINGERPRINT_BITS = 128
FINGERPRINT_SEED = 0x11A8
# Kinds of item.
UPDATE = 0  # may change the state, returned
ASK_MODEL = 1  # read-only, legal where `step` says
ASK_BY_STATE = 2  # read-only, legal only in state `only_in`
PENDING = 3  # may change the state, pending: may take effect any time after its call, or never
# How backtracking goes on over a linearized item: UPDATE or PENDING, with the next item of
# that kind after it (updates first, then pending ones); FORCED, with none (the read-only
# rule left no choice); RESTART, from the window's start (it was picked out of order).
FORCED = 4
RESTART = 5


class Deadline(Protocol):
    def expired(self) -> bool: ...


class Outcome(enum.Enum):
    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"


class Item(NamedTuple):
    """One operation of a partition as the search sees it. `ret` None: pending to the end.

    `call` and `ret` are non-negative integer positions in real-time order (event indexes);
    at equal positions a call comes before a return, so the two operations overlap.
    `only_in`, if given, is the one state in which this read-only operation is legal.
    """

    call: int
    ret: int | None
    input: Any
    output: Any
    read_only: bool
    only_in: Any = ANYWHERE


@attrs.frozen
class DeadEnd:
    """The deepest configuration the search reached, where it had to give up.

    `prefix` is the linearized operations in order (indexes into the items), `state` the
    model state after them. `blocked` is the operation whose return came first among
    those not linearized: it, or one of `candidates` (the operations called before that
    return, `blocked` included), had to take effect next, and every one of them is illegal
    in `state`.
    """

    prefix: tuple[int, ...]
    state: Any
    blocked: int
    candidates: tuple[int, ...]


@attrs.frozen
class SearchResult:
    outcome: Outcome
    linearization: tuple[int, ...] | None  # when OK: item indexes in linearized order
    dead_end: DeadEnd | None  # when ILLEGAL
    configurations: int  # configurations entered
    states: int  # distinct model states met
    memory: int  # bytes charged at the end (see ENTRY_BYTES): the most the search kept
    over_budget: bool = False  # when UNKNOWN: the memory budget ran out (else the deadline)


class _List(NamedTuple):
    """The entries' linked list: entry 0 is the head, entry len(nxt) - 1 the tail."""

    nxt: list[int]
    prv: list[int]
    cop: list[int]  # call entry -> item; -1 for a return entry; -2 for the tail
    rop: list[int]  # return entry -> item; -1 otherwise
    cent: list[int]  # item -> its call entry
    rent: list[int]  # item -> its return entry, -1 if pending
    rnx: list[int]  # the return entries alone, linked in order: the first ends the window
    rpv: list[int]


def _entries(calls: list[int], rets: list[int | None]) -> _List:
    """The linked lists of entries, for items in order of call (checked by the caller)."""
    n = len(calls)
    shift = n.bit_length()
    # (position, call 0 / return 1, item) packed in one int: ints sort fast, and a call
    # sorts before a return at the same position.
    codes = [c << 1 << shift | i for i, c in enumerate(calls)]
    codes += [(r << 1 | 1) << shift | i for i, r in enumerate(rets) if r is not None]
    codes.sort()
    m = len(codes)
    tail = m + 1
    mask = (1 << shift) - 1
    returning = 1 << shift
    cop = [-1] * (m + 2)
    cop[tail] = -2
    rop = [-1] * (m + 2)
    cent: list[int] = []  # items come in order of call: item k's call is the k-th
    rent = [-1] * n
    returns = [0]
    for entry, code in enumerate(codes, start=1):
        if code & returning:
            i = code & mask
            if i >= len(cent):
                raise ValueError("an item returns before its call")
            rop[entry] = i
            rent[i] = entry
            returns.append(entry)
        else:
            cop[entry] = code & mask
            cent.append(entry)
    returns.append(tail)
    rnx = [0] * (m + 2)
    rpv = [0] * (m + 2)
    previous = 0
    for entry in returns[1:]:
        rnx[previous] = entry
        rpv[entry] = previous
        previous = entry
    nxt = [*range(1, m + 2), tail]
    prv = [0, *range(m + 1)]
    return _List(nxt, prv, cop, rop, cent, rent, rnx, rpv)


def search(
    items: Sequence[Item],
    init: Hashable,
    step: Step,
    deadline: Deadline,
    max_memory: int = MAX_MEMORY,
) -> SearchResult:
    """Find a linearization of `items` (in order of call) from `init`, or show there is none.

    Gives up (UNKNOWN) when `deadline` expires or when what the search keeps passes
    `max_memory` bytes (as counted: see `ENTRY_BYTES`); both are looked at every
    `POLL_EVERY` configurations.
    """
    calls = [item.call for item in items]
    if calls != sorted(calls):
        raise ValueError("search() takes items in order of call")
    if max_memory <= 0:
        raise ValueError(f"max_memory must be positive, not {max_memory}")
    n = len(items)
    rets = [item[1] for item in items]
    inputs = [item[2] for item in items]
    outputs = [item[3] for item in items]
    kind = [
        (ASK_BY_STATE if only_in is not ANYWHERE else ASK_MODEL)
        if read_only
        else (UPDATE if ret is not None else PENDING)
        if only_in is ANYWHERE
        else -1
        for _, ret, _, _, read_only, only_in in items
    ]
    if -1 in kind:
        raise ValueError("only_in is for read-only items")
    twin = [-1] * n
    # Items found by state: one circular list per only_in value of the items not yet
    # linearized, in order of call, so the first is the one to test against the window.
    # Node n + g is the sentinel of group g. Lifts and unlifts come in stack order, so
    # removing and restoring in place (dancing links again) keeps every list exact.
    group_of: dict[Hashable, int] = {}
    goal_of = [-1] * n  # per read-only item found by state: its group's sentinel
    vnext = list(range(n))
    vprev = list(range(n))
    # Pending items with equal input and output: the previous one of each (see _twin).
    last_twin: dict[tuple[Any, Any], int] = {}
    for i, k in enumerate(kind):
        if k == ASK_BY_STATE:
            only_in = items[i].only_in
            g = group_of.get(only_in)
            if g is None:
                g = group_of[only_in] = len(group_of)
                vnext.append(n + g)
                vprev.append(n + g)
            head = n + g
            goal_of[i] = head
            last = vprev[head]
            vnext[last] = i
            vprev[i] = last
            vnext[i] = head
            vprev[head] = i
        elif k == PENDING:
            twin[i] = _twin(last_twin, i, inputs[i], outputs[i])
    nxt, prv, cop, rop, cent, rent, rnx, rpv = _entries(calls, rets)
    tail = len(nxt) - 1
    numbers = random.Random(FINGERPRINT_SEED)
    zi = [numbers.getrandbits(FINGERPRINT_BITS) for _ in range(n)]  # per item
    done = bytearray(n)  # per item: 1 while linearized
    states: list[Hashable] = [init]
    state_ids: dict[Hashable, int] = {init: 0}
    zs = [numbers.getrandbits(FINGERPRINT_BITS)]  # per state id
    seen: set[int] = set()  # fingerprints of the configurations entered
    # Per state id: the sentinel of the group of items legal only in that state, or -1.
    legal_here: list[int] = [n + group_of[init] if init in group_of else -1]
    # Per item: state id -> state id after it, -1 if illegal there (-2 means not yet known).
    trans: list[dict[int, int]] = [{} for _ in range(n)]
    # What the states and transitions met so far are charged (see STATE_BYTES).
    kept = [STATE_BYTES + state_bytes(init)]

    def transition(i: int, sid: int) -> int:
        """The state id after item i from state id sid, or -1 if illegal (memoized)."""
        ok, new = step(states[sid], inputs[i], outputs[i])
        if ok:
            t = state_ids.get(new)
            if t is None:
                t = len(states)
                states.append(new)
                state_ids[new] = t
                zs.append(numbers.getrandbits(FINGERPRINT_BITS))
                legal_here.append(n + group_of[new] if new in group_of else -1)
                kept[0] += STATE_BYTES + state_bytes(new)
        else:
            t = -1
        trans[i][sid] = t
        kept[0] += MEMO_BYTES
        return t

    def charged() -> int:
        return BASE_BYTES + len(seen) * ENTRY_BYTES + kept[0]

    has_asked = ASK_MODEL in kind  # read-only items the model must be asked about
    has_pending = PENDING in kind
    stack: list[int] = []  # linearized items, in order
    stack_sid: list[int] = []  # the state id before each
    stack_mode: list[int] = []  # how to go on when backtracking over each: its kind, or FORCED
    dead_end: DeadEnd | None = None
    zl = 0  # the XOR of the numbers of the linearized items
    sid = 0
    entered = 0
    t = 0
    # The loop keeps everything in locals and inlines lift/unlift: it is the hot path.
    while True:
        # A configuration entered for the first time.
        entered += 1
        if not entered % POLL_EVERY and (deadline.expired() or charged() > max_memory):
            return SearchResult(
                Outcome.UNKNOWN, None, None, entered, len(states), charged(), charged() > max_memory
            )
        end = rnx[0]  # the window ends at the first return entry left
        if end == tail:  # every item that returned is linearized; the rest may never happen
            return SearchResult(Outcome.OK, tuple(stack), None, entered, len(states), charged())
        # The read-only rule: an item legal only in this state, called in the window...
        forced = False
        head = legal_here[sid]
        if head >= 0:
            i = vnext[head]
            if i < n and cent[i] < end:
                forced = True
        if not forced:
            # ... or one the model says is legal here. Else the item to try first: when
            # the item whose return ends the window is a read legal in one state only
            # (`goal`), one that leads to that state, failing one the first pending item
            # that leads somewhere new (`spare`); else the first update that does
            # (`choice`); else, below, the pending items in order.
            goal = goal_of[rop[end]]
            choice = -1
            spare = -1
            mode = UPDATE
            e = nxt[0]
            i = cop[e]
            while i >= 0:
                k = kind[i]
                if k == ASK_MODEL:
                    t = trans[i].get(sid, -2)
                    if t == -2:
                        t = transition(i, sid)
                    if t >= 0:
                        forced = True
                        break
                elif (not k and (choice < 0 or goal >= 0)) or (
                    k == PENDING and goal >= 0 and (twin[i] < 0 or done[twin[i]])
                ):
                    t = trans[i].get(sid, -2)
                    if t == -2:
                        t = transition(i, sid)
                    if t >= 0 and zl ^ zi[i] ^ zs[t] not in seen:
                        if goal >= 0 and legal_here[t] == goal:
                            choice = i
                            choice_sid = t
                            mode = RESTART
                            if not has_asked:
                                break
                            goal = -1  # found: only read-only items matter from here
                        elif k == PENDING:
                            if spare < 0:
                                spare = i
                                spare_sid = t
                        elif choice < 0:
                            choice = i
                            choice_sid = t
                            if goal < 0 and not has_asked:
                                break
                e = nxt[e]
                i = cop[e]
        if not forced:
            if mode != RESTART and spare >= 0:
                choice = spare
                choice_sid = spare_sid
                mode = RESTART
            if choice >= 0:
                i = choice
                t = choice_sid
            else:
                i = -1
                if has_pending:
                    mode = PENDING
                    e = nxt[0]
                    i = cop[e]
                    while i >= 0:
                        if kind[i] == PENDING:
                            tw = twin[i]
                            if tw < 0 or done[tw]:
                                t = trans[i].get(sid, -2)
                                if t == -2:
                                    t = transition(i, sid)
                                if t >= 0 and zl ^ zi[i] ^ zs[t] not in seen:
                                    break
                        e = nxt[e]
                        i = cop[e]
                if i < 0 and (dead_end is None or len(stack) > len(dead_end.prefix)):
                    dead_end = _dead_end(stack, states[sid], end, nxt, cop, rop)
        if forced:
            key = zl ^ zi[i] ^ zs[sid]
            if key not in seen:
                seen.add(key)
                stack.append(i)
                stack_sid.append(sid)
                stack_mode.append(FORCED)
                zl ^= zi[i]
                done[i] = 1
                if kind[i] == ASK_BY_STATE:
                    p, x = vprev[i], vnext[i]
                    vnext[p] = x
                    vprev[x] = p
                c = cent[i]
                p, x = prv[c], nxt[c]
                nxt[p] = x
                prv[x] = p
                r = rent[i]
                if r >= 0:
                    p, x = prv[r], nxt[r]
                    nxt[p] = x
                    prv[x] = p
                    p, x = rpv[r], rnx[r]
                    rnx[p] = x
                    rpv[x] = p
                continue
            # Entered before with this read-only item taken: it failed then, so does this.
        while True:
            if i < 0 or forced:
                # Backtrack to the last choice that has an alternative.
                forced = False
                while True:
                    if not stack:
                        return SearchResult(
                            Outcome.ILLEGAL, None, dead_end, entered, len(states), charged()
                        )
                    i = stack.pop()
                    sid = stack_sid.pop()
                    mode = stack_mode.pop()
                    zl ^= zi[i]
                    done[i] = 0
                    r = rent[i]
                    if r >= 0:
                        p, x = prv[r], nxt[r]
                        nxt[p] = r
                        prv[x] = r
                        p, x = rpv[r], rnx[r]
                        rnx[p] = r
                        rpv[x] = r
                    c = cent[i]
                    p, x = prv[c], nxt[c]
                    nxt[p] = c
                    prv[x] = c
                    if mode != FORCED:
                        break
                    if kind[i] == ASK_BY_STATE:
                        p, x = vprev[i], vnext[i]
                        vnext[p] = i
                        vprev[x] = i
                # The next item after it, of its kind (updates, then pending ones), that
                # leads somewhere new; read-only items here were all illegal on entry. An
                # item picked out of order sends the search back to the window's start.
                if mode == RESTART:
                    mode = UPDATE
                    e = nxt[0]
                else:
                    e = nxt[c]
                while True:
                    i = cop[e]
                    while i >= 0:
                        if kind[i] == mode:
                            tw = twin[i]
                            if tw < 0 or done[tw]:
                                t = trans[i].get(sid, -2)
                                if t == -2:
                                    t = transition(i, sid)
                                if t >= 0 and zl ^ zi[i] ^ zs[t] not in seen:
                                    break
                        e = nxt[e]
                        i = cop[e]
                    if i >= 0 or mode == PENDING or not has_pending:
                        break
                    mode = PENDING
                    e = nxt[0]
                if i < 0:
                    continue  # no alternative here either
            # Take item i into the linearization, reaching state id t.
            zl ^= zi[i]
            done[i] = 1
            seen.add(zl ^ zs[t])
            stack.append(i)
            stack_sid.append(sid)
            stack_mode.append(mode)
            sid = t
            c = cent[i]
            p, x = prv[c], nxt[c]
            nxt[p] = x
            prv[x] = p
            r = rent[i]
            if r >= 0:
                p, x = prv[r], nxt[r]
                nxt[p] = x
                prv[x] = p
                p, x = rpv[r], rnx[r]
                rnx[p] = x
                rpv[x] = p
            break


def state_bytes(state: Any) -> int:
    """What a state is charged beyond `STATE_BYTES`: its length, for the kinds that have one.

    A function of the value alone (not of the allocator), so a budget gives the same verdict
    on every machine: a string or bytes is charged a byte a character, a tuple or frozenset
    (the states of the models over many keys) 64 bytes and its elements.
    """
    if isinstance(state, (str, bytes)):
        return len(state)
    if isinstance(state, (tuple, frozenset)):
        return 64 + sum(16 + state_bytes(x) for x in state)
    return 0


def _dead_end(
    stack: list[int], state: Any, ret_entry: int, nxt: list[int], cop: list[int], rop: list[int]
) -> DeadEnd:
    candidates = []
    e = nxt[0]
    while e != ret_entry:
        candidates.append(cop[e])
        e = nxt[e]
    return DeadEnd(tuple(stack), state, rop[ret_entry], tuple(candidates))


def _twin(last: dict[tuple[Any, Any], int], i: int, input: Any, output: Any) -> int:
    """The previous pending item with this input and output, or -1; records item i.

    Pending items with equal input and output are interchangeable once called, so the
    search only tries the earliest unlinearized one of them.
    """
    try:
        key = (input, output)
        previous = last.get(key, -1)
        last[key] = i
    except TypeError:  # an unhashable input: no twin, only a missed shortcut
        return -1
    return previous
