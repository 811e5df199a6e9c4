"""Label and field selectors: Kubernetes' string syntax and the LabelSelector message, parsed and matched."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pinnace.api import meta_pb2

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"


class SelectorError(ValueError):
    """A selector string that does not parse; the message shows where."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return have and value == self.values[0]
        if self.op == "!=":
            return not have or value != self.values[0]
        if self.op == "in":
            return have and value in self.values
        if self.op == "notin":
            return not have or value not in self.values
        if self.op == "exists":
            return have
        if self.op == "!":
            return not have
        if self.op in ("gt", "lt"):
            try:
                v = int(value or "")
            except ValueError:
                return False
            return v > int(self.values[0]) if self.op == "gt" else v < int(self.values[0])
        raise SelectorError(f"unknown operator {self.op}")


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_SPLIT = re.compile(r",(?![^()]*\))")
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def parse_label_selector(text: str) -> Selector:
    """Parse "app=web,tier!=db,env in (a,b),!legacy,release"."""
    if not text or not text.strip():
        return Selector()
    reqs: list[Requirement] = []
    for part in _SPLIT.split(text):
        if m := _SET.match(part):
            values = tuple(v.strip() for v in m.group(4).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(3), values))
        elif m := _EQ.match(part):
            op = "!=" if m.group(3) == "!=" else "="
            reqs.append(Requirement(m.group(1), op, (m.group(4),)))
        elif m := _EXISTS.match(part):
            reqs.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
        else:
            raise SelectorError(f"cannot parse selector term {part.strip()!r} in {text!r}")
    return Selector(tuple(reqs))


def from_label_selector(sel: meta_pb2.LabelSelector) -> Selector:
    """The LabelSelector message (matchLabels + matchExpressions) as a Selector."""
    reqs = [Requirement(k, "=", (v,)) for k, v in sorted(sel.match_labels.items())]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for e in sel.match_expressions:
        if e.operator not in ops:
            raise SelectorError(f"matchExpressions operator {e.operator!r}: use In, NotIn, Exists or DoesNotExist")
        reqs.append(Requirement(e.key, ops[e.operator], tuple(e.values)))
    return Selector(tuple(reqs))


def selector_from_map(labels: Mapping[str, str]) -> Selector:
    return Selector(tuple(Requirement(k, "=", (v,)) for k, v in sorted(labels.items())))


def format_selector(sel: Selector) -> str:
    out = []
    for r in sel.requirements:
        if r.op in ("=", "!="):
            out.append(f"{r.key}{r.op}{r.values[0]}")
        elif r.op in ("in", "notin"):
            out.append(f"{r.key} {r.op} ({','.join(r.values)})")
        elif r.op == "exists":
            out.append(r.key)
        else:
            out.append(f"!{r.key}")
    return ",".join(out)


@dataclass(frozen=True)
class FieldRequirement:
    path: str  # e.g. "spec.nodeName"
    op: str  # "=" or "!="
    value: str


def parse_field_selector(text: str) -> tuple[FieldRequirement, ...]:
    """Parse "spec.nodeName=n1,status.phase!=Running"."""
    if not text or not text.strip():
        return ()
    out = []
    for part in text.split(","):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"cannot parse field selector term {part.strip()!r}: write path=value or path!=value")
        out.append(FieldRequirement(m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return tuple(out)
