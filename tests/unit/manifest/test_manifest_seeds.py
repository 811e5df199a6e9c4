"""Every seed manifest in ../shared/fixtures/seed-manifests gets the verdict written in its expected.yaml."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from pinnace.manifest import ManifestError, load_path

from ._support import SEEDS, assert_round_trips, skip_without


def _verdicts() -> dict[str, Any]:
    path = SEEDS / "expected.yaml"
    if not path.is_file():
        return {}
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


VERDICTS = _verdicts()


@skip_without(SEEDS)
@pytest.mark.parametrize("name", sorted(VERDICTS), ids=sorted(VERDICTS))
def test_seed_verdict(name: str) -> None:
    verdict = VERDICTS[name]
    path = SEEDS / name
    if verdict["verdict"] == "ok":
        objs = load_path(path)
        assert objs
        assert_round_trips(objs)
        return
    with pytest.raises(ManifestError) as info:
        load_path(path)
    text = str(info.value)
    for line in verdict["lines"]:
        assert re.search(rf"{re.escape(str(path))}:{line}(:|\b)", text), f"line {line} not named:\n{text}"


@skip_without(SEEDS)
def test_every_seed_file_has_a_verdict() -> None:
    files = {str(p.relative_to(SEEDS)) for p in SEEDS.rglob("*") if p.is_file() and p.name != "expected.yaml"}
    assert files <= set(VERDICTS)


def _problems(name: str) -> str:
    with pytest.raises(ManifestError) as info:
        load_path(SEEDS / name)
    return str(info.value)


@skip_without(SEEDS)
def test_api_sla_explains_missing_space_and_kind() -> None:
    text = _problems("api-sla.yaml")
    assert 'write "name: myservice-sla"' in text
    assert "space after the colon" in text
    assert "'VX'" in text and "API-Sla" in text and "Pinnace knows:" in text and "Pod (v1)" in text


@skip_without(SEEDS)
def test_service_json_names_curly_quote() -> None:
    text = _problems("service.json")
    assert ":18:13:" in text
    assert "U+201C LEFT DOUBLE QUOTATION MARK" in text
    assert "never closed" in text and '"LoadBalancer"' in text


@skip_without(SEEDS)
def test_pod_emptydir_explains_indentation() -> None:
    text = _problems("pod-emptydir.yaml")
    assert ':8:9: "name" starts at column 9, deeper than "image" on line 7' in text
    assert "Line them up" in text


@pytest.mark.parametrize("name", ["gitrepo-volume.yaml", "nfs-volume.yaml"])
@skip_without(SEEDS)
def test_fragments_with_lookalike_hyphen(name: str) -> None:
    text = _problems(name)
    assert f"{name}:2:5: U+2010 HYPHEN" in text
    assert "use '-' (U+002D)" in text
    assert "no apiVersion and kind" in text and "spec.volumes" in text


@skip_without(SEEDS)
def test_pvc_reports_both_problems() -> None:
    text = _problems("pvc.yaml")
    assert "pvc.yaml:7:5: spec.persistentVolumeReclaimPolicy: unknown field for PersistentVolumeClaim" in text
    assert "(it belongs to PersistentVolume)" in text
    assert "pvc.yaml:9:9: U+2010 HYPHEN" in text
    assert "spec.accessModes: expected a list" in text
