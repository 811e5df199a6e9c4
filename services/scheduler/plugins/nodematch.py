"""Matching node labels against nodeSelector maps and NodeSelectorTerms, as cached row masks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from pinnace.api import pod_pb2
from services.scheduler.cache import BoolArray, NodeCache


def requirement_matches(req: pod_pb2.NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against labels."""
    op = req.operator
    have = req.key in labels
    value = labels.get(req.key, "")
    if op == "In":
        return have and value in req.values
    if op == "NotIn":
        return not have or value not in req.values
    if op == "Exists":
        return have
    if op == "DoesNotExist":
        return not have
    if op in ("Gt", "Lt"):
        if not have or len(req.values) != 1:
            return False
        try:
            v, bound = int(value), int(req.values[0])
        except ValueError:
            return False
        return v > bound if op == "Gt" else v < bound
    return False


def term_matches(term: pod_pb2.NodeSelectorTerm, labels: Mapping[str, str], name: str) -> bool:
    """All expressions and fields of a term hold (an empty term matches nothing, as in Kubernetes)."""
    if not term.match_expressions and not term.match_fields:
        return False
    if not all(requirement_matches(r, labels) for r in term.match_expressions):
        return False
    fields = {"metadata.name": name}
    return all(requirement_matches(r, fields) for r in term.match_fields)


def _rows_mask(cache: NodeCache, n: int, pred: Callable[[dict[str, str], str], bool]) -> BoolArray:
    out = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(cache.valid[:n]).tolist():
        if pred(cache.labels[i], cache.name(i)):
            out[i] = True
    return out


def selector_mask(cache: NodeCache, n: int, selector: Mapping[str, str]) -> BoolArray:
    """Rows whose labels include every key=value of a nodeSelector map (cached until labels change)."""
    items = tuple(sorted(selector.items()))

    def compute() -> BoolArray:
        return _rows_mask(cache, cache.capacity, lambda labels, _n: all(labels.get(k) == v for k, v in items))

    mask: BoolArray = cache.cached(("nodeSelector", items), compute)
    return mask[:n]


def node_selector_mask(cache: NodeCache, n: int, sel: pod_pb2.NodeSelector) -> BoolArray:
    """Rows matching any term of a NodeSelector (required node affinity, PV node affinity)."""
    key = ("nodeSelectorTerms", sel.SerializeToString(deterministic=True))
    terms = list(sel.node_selector_terms)

    def compute() -> BoolArray:
        return _rows_mask(cache, cache.capacity, lambda labels, name: any(term_matches(t, labels, name) for t in terms))

    mask: BoolArray = cache.cached(key, compute)
    return mask[:n]


def term_mask(cache: NodeCache, n: int, term: pod_pb2.NodeSelectorTerm) -> BoolArray:
    key = ("term", term.SerializeToString(deterministic=True))

    def compute() -> BoolArray:
        return _rows_mask(cache, cache.capacity, lambda labels, name: term_matches(term, labels, name))

    mask: BoolArray = cache.cached(key, compute)
    return mask[:n]
