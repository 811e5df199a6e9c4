"""Turn YAML and JSON syntax errors into explanations a user can act on (with the line that is wrong)."""

from __future__ import annotations

import json
import re

import yaml

from pinnace.manifest.lookalikes import Lookalike
from pinnace.manifest.problems import Problem

_NO_SPACE = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z_][\w.\-/]*)\s*:([^\s/:\[{'\"].*)$")
_KEY_LINE = re.compile(r"^(\s*)((?:-\s+)*)([^\s:#-][^:#]*?)\s*:(\s+(\S.*))?$")


def missing_space(line: str) -> tuple[int, str, str] | None:
    """(0-based column, key, value) when a line reads "key:value" with no space after the colon."""
    m = _NO_SPACE.match(line.rstrip())
    if not m or " #" in m.group(3):
        return None
    return len(m.group(1)), m.group(2), m.group(3).strip()


def missing_space_message(key: str, value: str) -> str:
    return (
        f'"{key}:{value}" has no space after the colon, so YAML reads it as one piece of text, not a key '
        f'and a value; write "{key}: {value}"'
    )


def _missing_space_problems(text: str, filename: str, line0: int) -> list[Problem]:
    lines = _lines(text)
    out: list[Problem] = []
    candidates = [line0]
    prev = _prev_content_line(lines, line0)
    if prev is not None:
        candidates.insert(0, prev)
    for i in candidates:
        if 0 <= i < len(lines):
            hit = missing_space(lines[i])
            if hit is not None:
                col, key, value = hit
                out.append(Problem(filename, i + 1, col + 1, "", missing_space_message(key, value)))
    return out


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _key_of(line: str) -> tuple[int, str, bool] | None:
    """(0-based column of the key, key, has an inline value) for a "key: value" line."""
    m = _KEY_LINE.match(line.rstrip())
    if not m:
        return None
    col = len(m.group(1)) + len(m.group(2))
    return col, m.group(3).strip(), bool(m.group(5)) and not m.group(5).startswith("#")


def _prev_content_line(lines: list[str], index: int) -> int | None:
    for i in range(index - 1, -1, -1):
        s = lines[i].strip()
        if s and not s.startswith("#"):
            return i
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _mapping_values_not_allowed(text: str, line0: int, col0: int) -> tuple[int, int, str]:
    lines = _lines(text)
    line = lines[line0] if line0 < len(lines) else ""
    here = _key_of(line)
    prev_i = _prev_content_line(lines, line0)
    if here is not None and prev_i is not None:
        hcol, hkey, _ = here
        prev = _key_of(lines[prev_i])
        if prev is not None and hcol == _indent(line) and hcol > prev[0] and prev[2]:
            pcol, pkey, _ = prev
            return (
                line0 + 1,
                hcol + 1,
                f'"{hkey}" starts at column {hcol + 1}, deeper than "{pkey}" on line {prev_i + 1} '
                f"(column {pcol + 1}), so it cannot be a key of the same mapping: YAML reads it as more of "
                f'the value of "{pkey}" and then finds an unexpected ":". Line them up: put "{hkey}" at '
                f"column {pcol + 1}",
            )
    if here is not None and here[2] and col0 > line.find(":") >= 0:
        return (
            line0 + 1,
            col0 + 1,
            'the value contains ": ", which YAML reads as another key; put the value in quotes',
        )
    return (
        line0 + 1,
        col0 + 1,
        'YAML found a ":" where no key can start; check the indentation of this line and the lines above',
    )


def _ancestors(lines: list[str], line0: int) -> list[tuple[int, str, int]]:
    """(key column, key, line index) of the keys this line could line up with, innermost first."""
    out: list[tuple[int, str, int]] = []
    limit = 10**9
    for i in range(line0 - 1, -1, -1):
        s = lines[i]
        if not s.strip() or s.lstrip().startswith("#"):
            continue
        k = _key_of(s)
        if k is None:
            continue
        col, key, _ = k
        if col < limit:
            out.append((col, key, i))
            dash = s.lstrip().startswith("-")  # a list may sit at its parent key's column
            limit = min(col, _indent(s) + (1 if dash else 0))
        if limit == 0:
            break
    return out


def _block_end(text: str, line0: int, col0: int, ctx_line: int, ctx_col: int, in_mapping: bool) -> str:
    lines = _lines(text)
    line = lines[line0] if line0 < len(lines) else ""
    here = _key_of(line)
    what = f'"{here[1]}"' if here is not None else "this line"
    msg = f"{what} starts at column {col0 + 1}, which does not line up with the lines above"
    if not in_mapping and ctx_col == col0:
        msg += (
            f" (the list on line {ctx_line + 1} has its '- ' items at column {col0 + 1}; "
            "a key cannot follow them there)"
        )
    options = [(c, k, i) for c, k, i in _ancestors(lines, line0) if c != col0 or not in_mapping]
    if options:
        likes = [f'column {c + 1} (like "{k}" on line {i + 1})' for c, k, i in options[:3]]
        msg += "; keys of one mapping must line up: put it at " + ", or ".join(likes)
    else:
        msg += f"; indent it like the line {ctx_line + 1}, column {ctx_col + 1}"
    return msg


def explain_yaml_error(err: yaml.YAMLError, text: str, filename: str) -> list[Problem]:
    """Problems for a YAML syntax error, placed at the lines that need fixing."""
    first = _explain_yaml_error(err, text, filename)
    extra: list[Problem] = []
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        extra = _missing_space_problems(text, filename, err.problem_mark.line)
        if err.context_mark is not None and err.context_mark.line != err.problem_mark.line:
            extra += _missing_space_problems(text, filename, err.context_mark.line)
    return [first, *extra]


def _explain_yaml_error(err: yaml.YAMLError, text: str, filename: str) -> Problem:
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        col = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        ch = err.character
        code = f"#x{ord(ch):04x}" if isinstance(ch, str) else f"#x{ch:02x}"
        return Problem(filename, line, col, "", f"control character {code} is not allowed in YAML; remove it")
    if not isinstance(err, yaml.MarkedYAMLError) or err.problem_mark is None:
        return Problem(filename, 0, 0, "", f"YAML syntax error: {err}")
    pm = err.problem_mark
    cm = err.context_mark
    problem = err.problem or ""
    context = err.context or ""
    line, col = pm.line + 1, pm.column + 1
    if "mapping values are not allowed" in problem:
        line, col, msg = _mapping_values_not_allowed(text, pm.line, pm.column)
    elif "'\\t'" in problem or "\\t" in problem:
        msg = "a tab character; YAML does not allow tabs for indentation: use spaces"
    elif "expected <block end>" in problem and cm is not None:
        msg = _block_end(text, pm.line, pm.column, cm.line, cm.column, "mapping" in context)
    elif "could not find expected ':'" in problem and cm is not None:
        line, col = cm.line + 1, cm.column + 1
        msg = (
            'this line is not a "key: value" pair (no ":" after the key); add the colon, or if it continues '
            "the value above, indent it further or quote the value"
        )
    elif "while scanning a quoted scalar" in context and cm is not None:
        line, col = cm.line + 1, cm.column + 1
        msg = "this quoted text is never closed; add the closing quote"
    elif "flow mapping" in context and cm is not None:
        msg = f"expected ',' or '}}' here, inside the {{...}} that starts on line {cm.line + 1}"
    elif "flow sequence" in context and cm is not None:
        msg = f"expected ',' or ']' here, inside the [...] that starts on line {cm.line + 1}"
    elif "found undefined alias" in problem:
        msg = f"{problem}: define the anchor (&name) before using *name"
    elif "found character '%'" in problem or "found character '@'" in problem or "found character '`'" in problem:
        msg = f"{problem}: a value starting with this character must be quoted"
    else:
        where = f" ({context} at line {cm.line + 1})" if context and cm is not None else ""
        msg = f"YAML syntax error: {problem}{where}"
    return Problem(filename, line, col, "", msg)


def explain_json_error(err: json.JSONDecodeError, text: str, filename: str, lookalikes: list[Lookalike]) -> Problem:
    """One problem for a JSON syntax error; a look-alike quote at the spot gets the fix spelled out."""
    for lk in lookalikes:
        if lk.line == err.lineno and lk.column == err.colno and lk.replacement == '"':
            rest = text[lk.offset + 1 :]
            word = re.match(r"[^\"\u201c\u201d\u201e\u201f\s,}\]]*", rest)
            value = word.group(0) if word else ""
            end = rest[len(value) : len(value) + 1]
            closed = end in ('"', "\u201c", "\u201d")
            tail = "" if closed else " and the string is never closed"
            return Problem(
                filename,
                lk.line,
                lk.column,
                "",
                f'{lk.message()}{tail}; JSON needs straight double quotes around strings: "{value}"',
            )
    msg = err.msg[0].lower() + err.msg[1:] if err.msg else "syntax error"
    hint = ""
    if err.msg.startswith("Expecting property name") or err.msg.startswith("Expecting value"):
        hint = " (a trailing comma, a missing value, or an unquoted word?)"
    elif err.msg.startswith("Expecting ',' delimiter"):
        hint = " (a missing comma between items?)"
    return Problem(filename, err.lineno, err.colno, "", f"JSON syntax error: {msg}{hint}")
