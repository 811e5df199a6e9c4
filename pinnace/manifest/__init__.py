"""Kubernetes manifests <-> Pinnace objects: YAML/JSON loading with located errors, validation, dumping.

objs = load_path("app.yaml")            # list[Object]; raises ManifestError listing every problem
text = dump_yaml(objs)                  # Kubernetes-shaped YAML, round-trips through load_text
problems = validate(obj)                # list[FieldProblem], also used by the store
line, col = locate("app.yaml", text, "spec.containers[0].image") or (0, 0)
"""

from __future__ import annotations

from pinnace.manifest.encode import dump_json, dump_yaml, to_dict
from pinnace.manifest.loader import (
    Located,
    from_dict,
    load_bytes,
    load_path,
    load_paths,
    load_paths_located,
    load_text,
    manifest_files,
)
from pinnace.manifest.locate import locate
from pinnace.manifest.problems import FieldProblem, ManifestError, Problem
from pinnace.manifest.validation import validate

source_line_for = locate

__all__ = [
    "FieldProblem",
    "Located",
    "ManifestError",
    "Problem",
    "dump_json",
    "dump_yaml",
    "from_dict",
    "load_bytes",
    "load_path",
    "load_paths",
    "load_paths_located",
    "load_text",
    "locate",
    "manifest_files",
    "source_line_for",
    "to_dict",
    "validate",
]
