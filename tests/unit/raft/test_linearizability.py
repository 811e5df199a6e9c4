"""The Wing-Gong checker itself: known-good and known-bad register histories."""

from __future__ import annotations

import random

from services.store.raft.linearizability import Op, check, check_partitioned


def w(c: int, a: float, b: float | None, v: object, key: str = "x") -> Op:
    return Op(c, a, b, "write", key, v)


def r(c: int, a: float, b: float | None, v: object, key: str = "x") -> Op:
    return Op(c, a, b, "read", key, None, v)


def cas(c: int, a: float, b: float | None, e: object, n: object, ok: bool) -> Op:
    return Op(c, a, b, "cas", "x", (e, n), ok)


def test_sequential_ok() -> None:
    assert check([w(1, 0, 1, 1), r(2, 2, 3, 1)]).ok


def test_stale_read_is_a_violation() -> None:
    assert not check([w(1, 0, 1, 1), w(1, 2, 3, 2), r(2, 4, 5, 1)]).ok


def test_concurrent_reads_cannot_go_back() -> None:
    assert check([w(1, 0, 5, 1), r(2, 1, 2, 1)]).ok
    assert not check([w(1, 0, 5, 1), r(2, 1, 2, 1), r(3, 3, 4, None)]).ok


def test_unknown_outcome_write_may_or_may_not_happen() -> None:
    assert check([w(1, 0, None, 1), r(2, 5, 6, 1)]).ok
    assert check([w(1, 0, None, 1), r(2, 5, 6, None)]).ok
    assert check([w(1, 0, None, 1), r(2, 5, 6, None), r(2, 7, 8, 1)]).ok
    assert not check([w(1, 0, None, 1), r(2, 5, 6, 1), r(2, 7, 8, None)]).ok


def test_cas() -> None:
    assert check([w(1, 0, 1, 1), cas(2, 2, 3, 1, 2, True), r(3, 4, 5, 2)]).ok
    assert not check([w(1, 0, 1, 1), cas(2, 2, 3, 1, 2, True), cas(3, 4, 5, 1, 3, True)]).ok
    assert check([w(1, 0, 1, 1), cas(2, 2, 3, 0, 2, False)]).ok


def test_partitioned_and_larger_random_history() -> None:
    # a sequential register history is always linearizable; make it concurrent by overlapping
    rng = random.Random(7)
    ops: list[Op] = []
    val: dict[str, object] = {}
    t = 0.0
    for i in range(300):
        key = rng.choice("abc")
        t += 1
        if rng.random() < 0.5:
            ops.append(w(i % 5, t - 0.5, t + 0.6, i, key))
            val[key] = i
        else:
            ops.append(r(i % 5, t - 0.5, t + 0.6, val.get(key), key))
    res = check_partitioned(ops)
    assert all(x.ok for x in res.values())
