"""Source text -> YAML node trees with positions (JSON is parsed as YAML, after a strict JSON check).

Syntax problems and look-alike characters come back as Problems; nothing here raises on bad input.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field

import yaml

from pinnace.manifest.lookalikes import Lookalike, find_lookalikes, in_comment
from pinnace.manifest.problems import Problem
from pinnace.manifest.schema import Placement, place_fragment
from pinnace.manifest.syntax import explain_json_error, explain_yaml_error

_TOP_KEY = re.compile(r"^([A-Za-z_][\w.\-/]*)\s*:")
_FREE_TEXT_KEYS = frozenset({"message", "description", "value", "command", "args"})


@dataclass
class Parsed:
    """The documents of one source text (None entries are skipped empty documents) and what went wrong."""

    filename: str
    text: str
    documents: list[yaml.Node] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def decode_bytes(data: bytes, filename: str) -> tuple[str | None, list[Problem]]:
    """Bytes -> text: UTF-8 (with or without BOM) or UTF-16/32 with a BOM; a clear problem otherwise."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec), []
            except UnicodeDecodeError as exc:
                return None, [Problem(filename, 0, 0, "", f"not valid {codec} text: {exc.reason}")]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8", errors="replace")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1
        byte = data[exc.start]
        msg = f"not UTF-8 text: byte 0x{byte:02x} cannot start or continue a character; save the file as UTF-8"
        return None, [Problem(filename, line, col, "", msg)]


def _looks_like_json(filename: str) -> bool:
    return filename.lower().endswith(".json")


def _lookalike_problem(filename: str, lk: Lookalike) -> Problem:
    return Problem(filename, lk.line, lk.column, "", lk.message())


def _scalar_spans(docs: list[yaml.Node]) -> list[tuple[int, int, bool]]:
    """(start, end, checked) offsets of plain scalars; checked is False for free-text values."""
    spans: list[tuple[int, int, bool]] = []
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(d, True) for d in docs]
    while stack:
        node, checked = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.style is None and node.start_mark is not None and node.end_mark is not None:
                spans.append((node.start_mark.index, node.end_mark.index, checked))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, checked) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else ""
                stack.append((k, True))
                free = key in _FREE_TEXT_KEYS or key == "annotations" or not checked
                stack.append((v, not free))
    return spans


def _fragment_note(text: str, filename: str) -> list[Problem]:
    """For text that fails to parse: say so if it has no apiVersion/kind at the top (a fragment)."""
    keys: list[str] = []
    for line in text.split("\n"):
        m = _TOP_KEY.match(line)
        if m:
            keys.append(m.group(1))
    if not keys or "apiVersion" in keys or "kind" in keys:
        return []
    return [Problem(filename, 1, 1, "", fragment_message(keys, place_fragment(keys)))]


def fragment_message(keys: list[str], placement: Placement | None) -> str:
    """Say that a document is not a whole object, and where its keys would fit."""
    msg = "no apiVersion and kind: this is not a whole Kubernetes object"
    if placement is not None:
        where = f"{placement.path}.{keys[0]}" if len(keys) == 1 else placement.path
        owner = "a pod" if placement.kind == "Pod" else f"a {placement.kind}"
        msg += (
            f"; it looks like a fragment of {owner}'s {where}: put it under that field of a complete "
            f"{placement.kind} manifest (apiVersion, kind, metadata, ...)"
        )
    else:
        msg += "; start it with apiVersion:, kind: and metadata:"
    return msg


def parse_text(text: str, filename: str) -> Parsed:
    """Parse all documents; on a syntax error return no documents and explained problems."""
    parsed = Parsed(filename, text)
    lookalikes = find_lookalikes(text)
    body = text[1:] if text.startswith("\ufeff") else text
    offset_fix = len(text) - len(body)
    yaml_text = body
    if _looks_like_json(filename):
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            first = explain_json_error(exc, body, filename, [_shift(lk, offset_fix) for lk in lookalikes])
            parsed.problems.append(first)
            parsed.problems.extend(
                _lookalike_problem(filename, lk)
                for lk in lookalikes
                if (lk.line, lk.column) != (first.line, first.column) and not in_comment(text, lk)
            )
            return parsed
        except RecursionError:
            parsed.problems.append(Problem(filename, 0, 0, "", "JSON is nested too deeply"))
            return parsed
        yaml_text = body.replace("\t", " ")  # valid JSON may use tabs between tokens; YAML may not
    try:
        docs = [d for d in yaml.compose_all(yaml_text, Loader=yaml.SafeLoader) if d is not None]
    except yaml.YAMLError as exc:
        parsed.problems.extend(explain_yaml_error(exc, yaml_text, filename))
        parsed.problems.extend(_lookalike_problem(filename, lk) for lk in lookalikes if not in_comment(text, lk))
        parsed.problems.extend(_fragment_note(yaml_text, filename))
        return parsed
    except RecursionError:
        parsed.problems.append(Problem(filename, 0, 0, "", "YAML is nested too deeply"))
        return parsed
    parsed.documents = [d for d in docs if not _is_null(d)]
    spans = sorted(_scalar_spans(parsed.documents))  # scalars never overlap
    starts = [start for start, _, _ in spans]
    for lk in lookalikes:
        pos = lk.offset - offset_fix
        i = bisect.bisect_right(starts, pos) - 1
        if i >= 0 and spans[i][0] <= pos < spans[i][1] and spans[i][2]:
            parsed.problems.append(_lookalike_problem(filename, lk))
    return parsed


def _shift(lk: Lookalike, by: int) -> Lookalike:
    return Lookalike(lk.offset - by, lk.line, lk.column, lk.char)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
