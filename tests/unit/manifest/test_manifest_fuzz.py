"""Fuzzing: any text, bytes, YAML-ish or JSON-ish input ends in objects or a ManifestError, never a traceback."""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinnace.manifest import ManifestError, dump_yaml, from_dict, load_bytes, load_text, validate

from ._support import OWN

# About 300 examples in all keep this to a few seconds; raise PINNACE_FUZZ_EXAMPLES for a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("PINNACE_FUZZ_EXAMPLES", "75")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=4)  # surrogates too
KEYS = st.sampled_from(
    [
        "apiVersion", "kind", "metadata", "name", "spec", "containers", "image", "ports", "containerPort",
        "targetPort", "resources", "limits", "cpu", "volumes", "emptyDir", "labels", "selector", "replicas",
        "strategy", "rollingUpdate", "maxSurge", "status", "capacity", "subsets", "items", "<<", "x",
    ]
) | ANY_TEXT  # fmt: skip
VALUES = st.one_of(
    ANY_TEXT,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["v1", "apps/v1", "Pod", "Deployment", "Service", "List", "3Gi", "25%", "http", "2024-01-01"]),
)
TREES = st.recursive(
    VALUES,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)
OBJECTS = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["v1", "apps/v1", "storage.k8s.io/v1", "coordination.k8s.io/v1"])},
    optional={"kind": st.sampled_from(["Pod", "Deployment", "Service", "Node", "Event", "List", "Lease"])},
).flatmap(lambda head: st.dictionaries(KEYS, TREES, max_size=4).map(lambda rest: {**rest, **head}))
SEED_TEXTS = [p.read_text() for p in sorted(OWN.iterdir())]


def _check(run: Any) -> None:
    try:
        objs = run()
    except ManifestError as exc:
        assert exc.problems and str(exc)
        return
    for obj in objs if isinstance(objs, list) else [objs]:
        validate(obj)
        dump_yaml([obj])


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _check(lambda: load_text(text, "f.yaml"))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _check(lambda: load_bytes(data, "f.yaml"))


@FUZZ
@given(OBJECTS, st.booleans())
def test_yaml_and_json_shaped(tree: dict[str, Any], as_json: bool) -> None:
    if as_json:
        text = json.dumps(tree, allow_nan=True)
        _check(lambda: load_text(text, "f.json"))
    else:
        try:
            text = yaml.safe_dump(tree, allow_unicode=True)
        except (yaml.YAMLError, UnicodeError):
            text = yaml.safe_dump(tree, allow_unicode=False)
        _check(lambda: load_text(text, "f.yaml"))
    _check(lambda: from_dict(tree))


@FUZZ
@given(
    st.sampled_from(SEED_TEXTS),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 4), st.text(max_size=3)), min_size=1, max_size=4),
)
def test_mutated_manifests(text: str, edits: list[tuple[float, int, str]]) -> None:
    for where, cut, insert in edits:
        i = int(where * len(text))
        text = text[:i] + insert + text[i + cut :]
    _check(lambda: load_text(text, "f.yaml"))
    _check(lambda: load_text(text, "f.json"))
