"""Topology domains: node rows grouped by the value of a label (kubernetes.io/hostname: one per node)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pinnace.api import meta_pb2
from pinnace.common.selectors import Selector, from_label_selector
from services.scheduler.cache import FloatArray, IntArray, NodeCache


def domains(cache: NodeCache, key: str) -> IntArray:
    """Per row, the id of the node's domain for a topology key (-1: the node lacks the label)."""

    def compute() -> IntArray:
        ids: dict[str, int] = {}
        out = np.full(cache.capacity, -1, dtype=np.int64)
        for i in np.flatnonzero(cache.valid).tolist():
            v = cache.labels[i].get(key)
            if v is not None:
                out[i] = ids.setdefault(v, len(ids))
        return out

    result: IntArray = cache.cached(("domains", key), compute)
    return result


def selector_of(sel: meta_pb2.LabelSelector) -> Selector | None:
    """A LabelSelector as a Selector; None (matches nothing) when unset or invalid."""
    try:
        return from_label_selector(sel)
    except ValueError:
        return None


def count_per_row(cache: NodeCache, n: int, namespaces: Iterable[str] | None, sel: Selector | None) -> FloatArray:
    """How many counted pods of the namespaces matching `sel` sit on each row."""
    out = np.zeros(n)
    if sel is None:
        return out
    idx = cache.index
    for e in cache.matching(namespaces, sel):
        i = idx.get(e.node)
        if i is not None and i < n:
            out[i] += 1
    return out


def per_domain(cache: NodeCache, n: int, key: str, per_row: FloatArray) -> FloatArray:
    """Spread per-row counts to every row of the same domain (rows without the label get 0)."""
    dom = domains(cache, key)[:n]
    has = dom >= 0
    if not has.any():
        return np.zeros(n)
    sums = np.bincount(dom[has], weights=per_row[has], minlength=int(dom.max()) + 1)
    out = np.zeros(n)
    out[has] = sums[dom[has]]
    return out
