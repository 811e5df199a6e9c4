"""Problems found in manifests: where (file, line, column, field path) and what, and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """A problem with one field of an object, found without any source text (e.g. by the store)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class Problem:
    """A problem at a place in a manifest file. line and column are 1-based; 0 means unknown."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}" if self.column else f":{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def _sort_key(p: Problem) -> tuple[str, int, int, str, str]:
    return (p.file, p.line, p.column, p.path, p.message)


def dedupe(problems: Iterable[Problem]) -> list[Problem]:
    """Problems in file/line order, each once."""
    seen: set[Problem] = set()
    out: list[Problem] = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return sorted(out, key=_sort_key)


class ManifestError(ValueError):
    """One or more problems in one or more manifests; str() is one problem per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = dedupe(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
