"""Load manifests from text, bytes, files, directories and stdin; raise ManifestError with every problem."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pinnace.api import object_pb2
from pinnace.manifest.document import Decoded, decode_document
from pinnace.manifest.locate import nearest
from pinnace.manifest.nodes import Position
from pinnace.manifest.parse import decode_bytes, parse_text
from pinnace.manifest.problems import ManifestError, Problem
from pinnace.manifest.validation import validate as validate_object

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Located:
    """An object with where it came from, so a server-side problem can be put on a line of the file."""

    obj: object_pb2.Object
    file: str
    positions: dict[str, Position] = field(default_factory=dict, compare=False, repr=False)

    def position(self, field_path: str) -> Position:
        """(line, column) of the field, or of its nearest ancestor present in the file; (0, 0) if none."""
        return nearest(self.positions, field_path)

    def problem(self, field_path: str, message: str) -> Problem:
        """A located Problem for a FieldProblem or a store error naming field_path."""
        line, col = self.position(field_path)
        return Problem(self.file, line, col, field_path, message)


def _problems_of(decoded: list[Decoded], filename: str, validate: bool) -> list[Problem]:
    problems: list[Problem] = []
    for d in decoded:
        problems.extend(d.problems)
        if d.obj is not None and validate:
            for fp in validate_object(d.obj):
                line, col = nearest(d.positions, fp.path)
                problems.append(Problem(filename, line, col, fp.path, fp.message))
    return problems


def _load(text: str, filename: str, validate: bool) -> tuple[list[Located], list[Problem]]:
    parsed = parse_text(text, filename)
    decoded: list[Decoded] = []
    problems = list(parsed.problems)
    for node in parsed.documents:
        try:
            decoded.extend(decode_document(node, filename))
        except RecursionError:
            problems.append(Problem(filename, 0, 0, "", "the document is nested too deeply"))
    problems.extend(_problems_of(decoded, filename, validate))
    return [Located(d.obj, filename, d.positions) for d in decoded if d.obj is not None], problems


def load_text(text: str, filename: str = "<stdin>", *, validate: bool = True) -> list[object_pb2.Object]:
    """All objects in a YAML (multi-document) or JSON text; ManifestError lists every problem."""
    located, problems = _load(text, filename, validate)
    if problems:
        raise ManifestError(problems)
    return [x.obj for x in located]


def _load_bytes(data: bytes, filename: str, validate: bool) -> tuple[list[Located], list[Problem]]:
    text, problems = decode_bytes(data, filename)
    if text is None:
        return [], problems
    return _load(text, filename, validate)


def load_bytes(data: bytes, filename: str = "<stdin>", *, validate: bool = True) -> list[object_pb2.Object]:
    located, problems = _load_bytes(data, filename, validate)
    if problems:
        raise ManifestError(problems)
    return [x.obj for x in located]


def manifest_files(path: Path, recursive: bool = False) -> list[Path]:
    """The manifest files in a directory (sorted), or the path itself for a file."""
    if not path.is_dir():
        return [path]
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES)


def _collect(paths: Iterable[str | Path], validate: bool, recursive: bool) -> list[Located]:
    objs: list[Located] = []
    problems: list[Problem] = []
    for raw in paths:
        if str(raw) == "-":
            got, probs = _load_bytes(sys.stdin.buffer.read(), "<stdin>", validate)
            objs.extend(got)
            problems.extend(probs)
            continue
        path = Path(raw)
        if not path.exists():
            problems.append(Problem(str(path), 0, 0, "", "no such file or directory"))
            continue
        files = manifest_files(path, recursive)
        if path.is_dir() and not files:
            problems.append(Problem(str(path), 0, 0, "", "no .yaml, .yml or .json files in this directory"))
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as exc:
                problems.append(Problem(str(f), 0, 0, "", f"cannot read: {exc.strerror or exc}"))
                continue
            got, probs = _load_bytes(data, str(f), validate)
            objs.extend(got)
            problems.extend(probs)
    if problems:
        raise ManifestError(problems)
    return objs


def load_path(path: str | Path, *, validate: bool = True, recursive: bool = False) -> list[object_pb2.Object]:
    """Objects from a file, a directory of .yaml/.yml/.json files, or "-" for stdin."""
    return [x.obj for x in _collect([path], validate, recursive)]


def load_paths(
    paths: Iterable[str | Path], *, validate: bool = True, recursive: bool = False
) -> list[object_pb2.Object]:
    """Objects from several paths; problems from all of them are reported together."""
    return [x.obj for x in _collect(paths, validate, recursive)]


def load_paths_located(paths: Iterable[str | Path], *, validate: bool = True, recursive: bool = False) -> list[Located]:
    """Like load_paths, keeping each object's file and field positions (see Located.problem)."""
    return _collect(paths, validate, recursive)


def from_dict(d: Any, filename: str = "<input>", *, validate: bool = True) -> object_pb2.Object:
    """One object from a Kubernetes-shaped dict (as json.load or yaml.safe_load give)."""
    try:
        node = yaml.SafeDumper(None).represent_data(d)  # type: ignore[arg-type]
    except (yaml.YAMLError, RecursionError, TypeError, ValueError) as exc:
        raise ManifestError([Problem(filename, 0, 0, "", f"not a manifest: {exc}")]) from exc
    decoded = decode_document(node, filename)
    problems = _problems_of(decoded, filename, validate)
    if problems:
        raise ManifestError(problems)
    objs = [x.obj for x in decoded if x.obj is not None]
    if len(objs) != 1:
        raise ManifestError([Problem(filename, 0, 0, "", f"expected one object, got {len(objs)}")])
    return objs[0]
