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


def resolve_unknown_register_ops(history: list[Op]) -> list[Op]:
    """Prune the search for register histories whose written values are unique.

    An unknown-outcome write (or CAS) whose value was observed (read, or expected by a
    successful CAS) did happen, no later than the earliest completion among its observers, so
    it becomes a completed op with that completion time; this keeps every valid
    linearization. Unobserved ones can only matter to explain a failed CAS, so they are
    dropped when the history has no failed CAS and otherwise stay unknown (tried last)."""
    has_failed_cas = any(o.kind == "cas" and o.complete is not None and not o.output for o in history)
    observed: dict[Any, float] = {}
    for o in history:
        seen = None
        if o.kind == "read" and o.complete is not None:
            seen = o.output
        elif o.kind == "cas" and o.complete is not None and o.output:
            seen = o.input[0]
        if seen is not None:
            observed[seen] = min(observed.get(seen, INF), o.complete or INF)
    out: list[Op] = []
    for o in history:
        if o.complete is None and o.kind in ("write", "cas"):
            value = o.input if o.kind == "write" else o.input[1]
            t = observed.get(value)
            if t is None:
                if has_failed_cas:
                    out.append(o)
                continue
            out.append(
                Op(o.client, o.invoke, max(t, o.invoke), o.kind, o.key, o.input, True if o.kind == "cas" else None)
            )
        else:
            out.append(o)
    return out


def check_partitioned(history: list[Op], model: Model = register_model, init: Hashable = None) -> dict[str, Result]:
    """Check each key's sub-history separately (unknown register ops resolved first)."""
    keys: dict[str, list[Op]] = {}
    for o in history:
        keys.setdefault(o.key, []).append(o)
    if model is register_model:
        keys = {k: resolve_unknown_register_ops(v) for k, v in keys.items()}
    return {k: check(v, model, init) for k, v in keys.items()}
