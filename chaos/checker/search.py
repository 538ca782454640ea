"""The search for a linearization of one partition: Wing & Gong with Lowe's improvements.

Every call and return is an entry of a doubly linked list in real-time order. The
*window* is the call entries before the first return entry still in the list: the
operations that may take effect next. Linearizing one *lifts* its call and return
entries out of the list; backtracking *unlifts* them (dancing links, so both are O(1)).
A configuration is (set of linearized operations, model state); the set is an int used
as a bitset and states are interned to small ints, and every configuration entered is
remembered so that none is explored twice (Lowe's cache). The history is linearizable
when no return entry is left: everything still in the list is pending (`info`) and may
never have happened.

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
# The default bound on configurations per search: ten times what the hardest corpus
# history needs, and a few hundred megabytes of cache at most.
MAX_CONFIGURATIONS = 2_000_000
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
    max_configurations: int = MAX_CONFIGURATIONS,
) -> SearchResult:
    """Find a linearization of `items` (in order of call) from `init`, or show there is none.

    Gives up (UNKNOWN) when `deadline` expires or after `max_configurations`, which
    bounds the memory of the cache (about 100 bytes a configuration).
    """
    calls = [item.call for item in items]
    if calls != sorted(calls):
        raise ValueError("search() takes items in order of call")
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
    bits = [1 << i for i in range(n)]
    states: list[Hashable] = [init]
    state_ids: dict[Hashable, int] = {init: 0}
    seen: list[set[int]] = [set()]  # per state id: the linearized sets entered with it
    # Per state id: the sentinel of the group of items legal only in that state, or -1.
    legal_here: list[int] = [n + group_of[init] if init in group_of else -1]
    # Per item: state id -> state id after it, -1 if illegal there (-2 means not yet known).
    trans: list[dict[int, int]] = [{} for _ in range(n)]

    def transition(i: int, sid: int) -> int:
        """The state id after item i from state id sid, or -1 if illegal (memoized)."""
        ok, new = step(states[sid], inputs[i], outputs[i])
        if ok:
            t = state_ids.get(new)
            if t is None:
                t = len(states)
                states.append(new)
                state_ids[new] = t
                seen.append(set())
                legal_here.append(n + group_of[new] if new in group_of else -1)
        else:
            t = -1
        trans[i][sid] = t
        return t

    has_asked = ASK_MODEL in kind  # read-only items the model must be asked about
    has_pending = PENDING in kind
    stack: list[int] = []  # linearized items, in order
    stack_sid: list[int] = []  # the state id before each
    stack_mode: list[int] = []  # how to go on when backtracking over each: its kind, or FORCED
    dead_end: DeadEnd | None = None
    lin = 0
    sid = 0
    entered = 0
    t = 0
    # The loop keeps everything in locals and inlines lift/unlift: it is the hot path.
    while True:
        # A configuration entered for the first time.
        entered += 1
        if not entered % POLL_EVERY and (deadline.expired() or entered >= max_configurations):
            return SearchResult(Outcome.UNKNOWN, None, None, entered, len(states))
        end = rnx[0]  # the window ends at the first return entry left
        if end == tail:  # every item that returned is linearized; the rest may never happen
            return SearchResult(Outcome.OK, tuple(stack), None, entered, len(states))
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
                    k == PENDING and goal >= 0 and (twin[i] < 0 or lin & bits[twin[i]])
                ):
                    t = trans[i].get(sid, -2)
                    if t == -2:
                        t = transition(i, sid)
                    if t >= 0 and lin | bits[i] not in seen[t]:
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
                            if tw < 0 or lin & bits[tw]:
                                t = trans[i].get(sid, -2)
                                if t == -2:
                                    t = transition(i, sid)
                                if t >= 0 and lin | bits[i] not in seen[t]:
                                    break
                        e = nxt[e]
                        i = cop[e]
                if i < 0 and (dead_end is None or len(stack) > len(dead_end.prefix)):
                    dead_end = _dead_end(stack, states[sid], end, nxt, cop, rop)
        if forced:
            new_lin = lin | bits[i]
            cache = seen[sid]
            if new_lin not in cache:
                cache.add(new_lin)
                stack.append(i)
                stack_sid.append(sid)
                stack_mode.append(FORCED)
                lin = new_lin
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
                        return SearchResult(Outcome.ILLEGAL, None, dead_end, entered, len(states))
                    i = stack.pop()
                    sid = stack_sid.pop()
                    mode = stack_mode.pop()
                    lin ^= bits[i]
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
                            if tw < 0 or lin & bits[tw]:
                                t = trans[i].get(sid, -2)
                                if t == -2:
                                    t = transition(i, sid)
                                if t >= 0 and lin | bits[i] not in seen[t]:
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
            new_lin = lin | bits[i]
            seen[t].add(new_lin)
            stack.append(i)
            stack_sid.append(sid)
            stack_mode.append(mode)
            sid = t
            lin = new_lin
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
