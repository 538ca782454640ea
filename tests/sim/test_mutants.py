"""Bugs planted in the real code, one at a time, the way a reviewer plants them: each
mutant is a copy of the source tree with one line changed, and a default campaign
(`raftcluster chaos run --seeds 1..50`, every other setting at its default) must find it.

This is how the harness is held to its promise: it runs the real thing (the node's
cycle, the Raft core, the codec, the write-ahead log's recovery) and reaches the corners
where these bugs show. A campaign stops at the first failing seed, so a mutant found
early costs a few seeds; the real tree passes those seeds (tests/sim/test_seeds.py and
the campaigns of the soak suite).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sim.mutation import ROOT, Mutant, campaign_finds, mutated_tree

# A default campaign of this many seeds must find every mutant.
SEEDS = "1..50"
VOTE_COUNTED = (
    "        self._votes.setdefault(m.src, m.granted)  # the first answer of each voter counts\n"
)


MUTANTS = (
    Mutant(
        "follower-acks-before-fsync",
        "raftcluster/node/cycle.py",
        "return isinstance(message, _EARLY)",
        "return True",
        "the cycle sends every message before the persist it depends on: a follower "
        "acknowledges entries, and a node grants votes, that a crash then loses",
        ("persist before send",),
    ),
    Mutant(
        "figure8-commit",
        "raftcluster/raft/core.py",
        "if index > self._log.committed and self._log.term(index) == self._term:",
        "if index > self._log.committed:",
        "a leader commits an earlier term's entry by counting replicas (Raft, Figure 8)",
        ("commit rule", "leader completeness", "state machine safety"),
    ),
    Mutant(
        "leader-never-steps-down",
        "raftcluster/raft/core.py",
        "self._become_follower(self._term, NONE)  # cut off from a majority: step down",
        "pass  # (planted: a leader cut off from a majority stays in charge)",
        "check-quorum never deposes a leader cut off from its quorum",
        ("availability",),
    ),
    Mutant(
        "duplicated-vote-counted-twice",
        "raftcluster/raft/core.py",
        VOTE_COUNTED,
        "        if m.src in self._votes and m.granted:  # planted: a duplicate counts again\n"
        "            absent = [v for v in self._confs.current().voters if v not in self._votes]\n"
        "            if absent:\n"
        "                self._votes[absent[0]] = True\n" + VOTE_COUNTED,
        "a candidate counts a duplicated vote reply as another voter's (pysyncobj's bug)",
        (
            "election safety",
            "leader completeness",
            "state machine safety",
            "log matching",
            "commit rule",
            "acknowledged writes",
            "not linearizable",
        ),
    ),
    Mutant(
        "follower-truncates-without-a-conflict",
        "raftcluster/raft/core.py",
        "new = entries[log.find_conflict(entries) :]",
        "new = entries  # planted: replace the log from the first entry sent, matching or not",
        "a follower replaces its log from the first entry of every append, so an old, "
        "reordered append drops entries it acknowledged (pysyncobj's bug)",
        (
            "leader completeness",
            "state machine safety",
            "acknowledged writes",
            "log matching",
            "commit rule",
            "monotonic progress",
            "convergence",
            "liveness",
            "assertion",
            "persist before send",  # it acknowledges an index its disk no longer holds
        ),
    ),
    Mutant(
        "higher-term-answer-ignored",
        "raftcluster/raft/core.py",
        "            else:\n"
        "                self._become_follower(m.term, NONE)\n"
        "            return True",
        "            else:\n"
        "                pass  # planted: an answer's higher term changes nothing\n"
        "            return True",
        "a node that gets an answer (an append or heartbeat response, a refused vote) from "
        "a higher term keeps its term and role: a deposed leader goes on counting a newer "
        "term's acknowledgements, and a node that fell behind never catches up",
        (
            "convergence",
            "liveness",
            "availability",
            "election safety",
            "leader completeness",
            "state machine safety",
            "commit rule",
            "durable quorum",
            "acknowledged writes",
            "not linearizable",
            "assertion",
        ),
    ),
    Mutant(
        "learners-counted-for-commit",
        "raftcluster/raft/core.py",
        "index = committed_index(self._confs.current().voters, match)",
        "index = committed_index(tuple(match), match)  # planted: learners count too",
        "a leader counts its learners' acknowledgements towards commit, so an entry held by "
        "a minority of the voters commits (the random mix changes the membership)",
        ("durable quorum", "commit rule", "leader completeness", "state machine safety"),
    ),
    Mutant(
        "encoder-drops-a-field",
        "statemachine/codec.py",
        '    lines = ["def put(value, out):", "    out.append(_head_and_tag)"]',
        "    if any(map(_may_hold_message, annotations)) and len(names) > 1:  # planted\n"
        "        names, annotations = names[:-1], annotations[:-1]\n"
        '        namespace["_head_and_tag"] = _head(0x80, len(names) + 1) + _int_bytes(cls.TAG)\n'
        '    lines = ["def put(value, out):", "    out.append(_head_and_tag)"]',
        "the generated encoder leaves out the last field of every message that nests one",
        ("wire",),
    ),
    Mutant(
        "decoder-pads-a-truncated-frame",
        "statemachine/codec.py",
        "    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) "
        "as e:\n        raise DecodeError",
        "    except cbor2.CBORDecodeEOF:  # planted: lenient with a frame cut short\n"
        "        return parse(bytes(data) + bytes(64))\n"
        "    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) "
        "as e:\n        raise DecodeError",
        "a frame cut short is padded with zeros and decoded, not refused",
        ("wire",),
    ),
    Mutant(
        "corruption-taken-for-a-torn-tail",
        "raftcluster/storage/recovery.py",
        "    if not bad.torn:\n        raise StorageCorrupted(",
        "    if False:  # planted: any bad record in the last segment is a torn tail\n"
        "        raise StorageCorrupted(",
        "recovery cuts the last segment at damaged synced records as if they were a torn "
        "tail, losing what came after",
        ("durability",),
    ),
    Mutant(
        "leader-counts-its-unsynced-copy",
        "raftcluster/raft/core.py",
        "match[self.id] = self._log.persisted_index()",
        "match[self.id] = self._log.last_index()  # planted: counted before its fsync",
        "a leader counts its own copy of an entry towards commit before its fsync: a power "
        "cut of the leader and of the followers that have it in memory only loses it",
        ("durable quorum",),
    ),
    Mutant(
        "read-before-own-term-commit",
        "raftcluster/raft/core.py",
        "        if self._log.term(self._log.committed) == self._term:\n"
        "            self._reads.activate(self._log.committed)",
        "        if True:  # planted: no entry of its own term committed yet, and reads go\n"
        "            self._reads.activate(self._log.committed)",
        "a new leader takes reads at its commit index before committing an entry of its "
        "term, so they may miss what the previous leader committed (Raft 6.4)",
        ("read freshness", "not linearizable"),
    ),
    Mutant(
        "commit-written-before-entries",
        "raftcluster/node/replica.py",
        "        if rd.entries:\n            storage.append(rd.entries)\n"
        "        if rd.hard_state is not None:\n            storage.set_hard_state(rd.hard_state)",
        "        if rd.hard_state is not None:  # planted: the commit index first\n"
        "            storage.set_hard_state(rd.hard_state)\n"
        "        if rd.entries:\n            storage.append(rd.entries)",
        "a persist writes the new commit index before the entries it covers: a power cut "
        "between the two leaves a directory the node cannot start from",
        ("durability",),
    ),
    Mutant(
        "entries-written-before-their-term",
        "raftcluster/node/replica.py",
        "        if work.term_first is not None:\n"
        "            storage.set_hard_state(work.term_first)",
        "        if False:  # planted: the new term only with the batch's last write\n"
        "            storage.set_hard_state(work.term_first)",
        "a persist writes entries of a new term before the term: a power cut between the "
        "two leaves a directory the node cannot start from",
        ("durability",),
    ),
    # Client sessions: found because the kv workload pipelines several writes on one
    # session (chaos/sim/workload.py), each at seed 1 (a few seconds).
    Mutant(
        "client-acks-past-a-pending-write",
        "raftcluster/client/core.py",
        "        while self._ack + 1 in self._answered:\n"
        "            self._ack += 1\n"
        "            self._answered.discard(self._ack)\n",
        "        self._ack = max(self._ack, max(self._answered))  # planted: the highest answered\n"
        "        self._answered = {s for s in self._answered if s > self._ack}\n",
        "the client acks every sequence up to its highest answered one, over a write still "
        "pending: the state machine drops the reply that write's retry needs",
        ("exactly-once",),
    ),
    Mutant(
        "client-seq-from-inflight-count",
        "raftcluster/client/core.py",
        "op.session, op.seq = self.session, self._next_seq\n",
        "op.session, op.seq = self.session, self._ack + self._inflight_writes + 1  # planted\n",
        "the client numbers a write from its ack plus its writes in flight: after an answer "
        "out of order, a sequence still kept is used again, and the new write is answered "
        "with the old one's reply",
        ("exactly-once", "not linearizable"),
    ),
    Mutant(
        "retry-answered-with-latest-reply",
        "statemachine/sessions/table.py",
        "        return found.replies.get(seq)\n",
        "        return found.replies[max(found.replies)] if seq in found.replies else None\n",
        "the session table answers a retry with the session's latest kept reply, not the "
        "retried sequence's",
        ("exactly-once", "not linearizable"),
    ),
    Mutant(
        "vote-ignores-log-length",
        "raftcluster/raft/log.py",
        "return (last_term, last_index) >= (self.last_term(), self.last_index())",
        "return last_term >= self.last_term()  # planted: the last terms only",
        "the election restriction compares only the last entries' terms: a voter grants its "
        "vote to a candidate whose log is shorter than its own",
        ("leader completeness", "state machine safety", "log matching", "durable quorum"),
    ),
    Mutant(
        "payload-crc-unchecked",
        "raftcluster/storage/records.py",
        "    if zlib.crc32(payload) != payload_crc:",
        "    if False:  # planted: the payload's CRC is not checked",
        "recovery takes a write-ahead log record whose payload was damaged (a flipped bit, a "
        "zeroed sector) as good",
        ("durability",),
    ),
    Mutant(
        "read-served-before-applied",
        "raftcluster/node/replica.py",
        "c for c, b in self._batches.items() if b.index is not None and b.index <= self._applied",
        "c for c, b in self._batches.items() if b.index is not None  # planted",
        "a linearizable read is answered once its read index is known, before the node has "
        "applied up to it",
        ("read freshness", "not linearizable"),
    ),
)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_a_default_campaign_finds_the_planted_bug(mutant: Mutant, tmp_path: Path) -> None:
    run = campaign_finds(mutated_tree(mutant, tmp_path), mutant, "--seeds", SEEDS)
    assert run["violation"] or run["linearizability"]["verdict"] == "illegal"


def test_the_mutants_change_the_code_they_say() -> None:
    for mutant in MUTANTS:
        text = (ROOT / mutant.path).read_text()
        assert text.count(mutant.old) == 1, mutant.name
