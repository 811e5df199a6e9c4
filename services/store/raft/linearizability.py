"""A Wing-Gong linearizability checker with memoization (Lowe's refinement), for tests.

A history is a list of `Op`s with invoke/complete times; an op whose outcome is unknown (the
client timed out or lost its connection) has `complete=None`: it may take effect at any point
after its invocation, or never. `check(history, model)` searches for a sequential order that
respects real time and the model; `check_partitioned` splits the history per key first
(registers are independent, so each key can be checked on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

INF = float("inf")


@dataclass(frozen=True)
class Op:
    client: int
    invoke: float
    complete: float | None  # None: outcome unknown
    kind: str  # "read", "write", "cas"
    key: str
    input: Any = None
    output: Any = None


# model(state, op) -> (legal, new_state); for unknown-outcome ops the output is not checked.
Model = Callable[[Hashable, Op], tuple[bool, Hashable]]


def register_model(state: Hashable, op: Op) -> tuple[bool, Hashable]:
    """A register: read -> value; write(v); cas((expected, new)) -> True/False."""
    unknown = op.complete is None
    if op.kind == "read":
        return (unknown or op.output == state), state
    if op.kind == "write":
        return True, op.input
    if op.kind == "cas":
        expected, new = op.input
        ok = state == expected
        if unknown:
            return ok, new if ok else state
        if op.output:
            return ok, new if ok else state
        return (not ok), state
    raise ValueError(f"unknown op kind {op.kind}")


@dataclass
class Result:
    ok: bool
    explored: int
    order: list[Op]


def check(history: list[Op], model: Model = register_model, init: Hashable = None, limit: int = 1_000_000) -> Result:
    """True if some linearization exists. Unknown-outcome ops may also be left out entirely."""
    ops = sorted(history, key=lambda o: o.invoke)
    n = len(ops)
    ret = [o.complete if o.complete is not None else INF for o in ops]
    required = 0
    for i, o in enumerate(ops):
        if o.complete is not None:
            required |= 1 << i
    seen: set[tuple[int, Hashable]] = set()
    explored = 0
    # iterative DFS: stack of (done_mask, state, order)
    stack: list[tuple[int, Hashable, list[int]]] = [(0, init, [])]
    while stack:
        done, state, order = stack.pop()
        if done & required == required:
            return Result(True, explored, [ops[i] for i in order])
        explored += 1
        if explored > limit:
            raise RuntimeError(f"linearizability search exceeded {limit} states")
        # an op can go next if it was invoked before every pending completed op returned
        horizon = min((ret[i] for i in range(n) if not done >> i & 1 and ret[i] != INF), default=INF)
        children: list[tuple[int, Hashable, list[int]]] = []
        unknown: list[tuple[int, Hashable, list[int]]] = []
        for i in range(n):
            if done >> i & 1:
                continue
            if ops[i].invoke > horizon:
                break
            legal, nstate = model(state, ops[i])
            if not legal:
                continue
            key = (done | 1 << i, nstate)
            if key in seen:
                continue
            seen.add(key)
            (unknown if ret[i] == INF else children).append((done | 1 << i, nstate, [*order, i]))
        # explore the earliest completed candidates first, unknown-outcome ops last
        stack.extend(reversed(unknown))
        stack.extend(reversed(children))
    return Result(False, explored, [])


def check_partitioned(history: list[Op], model: Model = register_model, init: Hashable = None) -> dict[str, Result]:
    """Check each key's sub-history separately; returns the result per key."""
    keys: dict[str, list[Op]] = {}
    for o in history:
        keys.setdefault(o.key, []).append(o)
    return {k: check(v, model, init) for k, v in keys.items()}
