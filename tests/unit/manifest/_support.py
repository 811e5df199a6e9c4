"""Paths to the shared fixtures (../shared beside the repo) and our own manifests, and a round-trip check."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinnace.api import object_pb2
from pinnace.manifest import dump_json, dump_yaml, load_text, to_dict

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "fixtures"
K8S_DOCS = SHARED / "k8s-docs"
SEEDS = SHARED / "seed-manifests"
OWN = REPO / "tests" / "fixtures" / "manifests"


def shared_files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


def skip_without(folder: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not folder.is_dir(), reason=f"{folder} is absent (CI copies ../shared beside the repo)")


def assert_round_trips(objs: list[object_pb2.Object]) -> None:
    """load -> dump -> load gives equal objects, for YAML and JSON; dumping again is stable."""
    text = dump_yaml(objs)
    again = load_text(text, "roundtrip.yaml")
    assert again == objs, text
    assert dump_yaml(again) == text
    for obj in objs:
        assert load_text(dump_json([obj]), "roundtrip.json") == [obj]
        d = to_dict(obj)
        assert list(d)[:2] == ["apiVersion", "kind"]
    if len(objs) > 1:
        assert load_text(dump_json(objs), "roundtrip.json") == objs
