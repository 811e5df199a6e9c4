"""Characters that look like YAML/JSON syntax but are not (typographic hyphens, curly quotes, odd spaces)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# code point -> the ASCII character it imitates
LOOKALIKES: dict[str, str] = {
    "\u2010": "-",  # HYPHEN
    "\u2011": "-",  # NON-BREAKING HYPHEN
    "\u2012": "-",  # FIGURE DASH
    "\u2013": "-",  # EN DASH
    "\u2014": "-",  # EM DASH
    "\u2212": "-",  # MINUS SIGN
    "\ufe63": "-",  # SMALL HYPHEN-MINUS
    "\uff0d": "-",  # FULLWIDTH HYPHEN-MINUS
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\uff02": '"',
    "\uff07": "'",
    "\uff1a": ":",  # FULLWIDTH COLON
    "\u3000": " ",  # IDEOGRAPHIC SPACE
    "\u00a0": " ",  # NO-BREAK SPACE
    "\u2007": " ",
    "\u202f": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2009": " ",
    "\u200b": "",  # ZERO WIDTH SPACE
    "\ufeff": "",  # ZERO WIDTH NO-BREAK SPACE (a BOM in the middle of the text)
}

_ROLE = {
    "-": "YAML does not read it as a list item marker or a hyphen",
    "'": "YAML/JSON do not read it as a quote",
    '"': "YAML/JSON do not read it as a quote",
    ":": "YAML does not read it as the colon between a key and its value",
    " ": "YAML does not read it as a space (for indentation or after a colon)",
    "": "it is invisible and YAML does not skip it",
}


@dataclass(frozen=True)
class Lookalike:
    """One look-alike character at a 1-based line and column (offset is 0-based into the text)."""

    offset: int
    line: int
    column: int
    char: str

    @property
    def replacement(self) -> str:
        return LOOKALIKES[self.char]

    def message(self) -> str:
        name = unicodedata.name(self.char, "UNKNOWN")
        rep = self.replacement
        what = f"U+{ord(self.char):04X} {name}"
        if rep == "":
            fix = "delete it"
        elif rep == " ":
            fix = "use an ordinary space (U+0020)"
        else:
            fix = f"use '{rep}' (U+{ord(rep):04X})"
        return f"{what} looks like {rep!r} but is not: {_ROLE[rep]}; {fix}" if rep else f"{what}: {_ROLE[rep]}; {fix}"


def find_lookalikes(text: str) -> list[Lookalike]:
    """Every look-alike character in the text (a BOM at the very start is fine and skipped)."""
    found: list[Lookalike] = []
    line, line_start = 1, 0
    for i, ch in enumerate(text):
        if ch == "\n":
            line += 1
            line_start = i + 1
        elif ch in LOOKALIKES and not (i == 0 and ch == "\ufeff"):
            found.append(Lookalike(i, line, i - line_start + 1, ch))
    return found


def in_comment(text: str, lk: Lookalike) -> bool:
    """A rough test: is the character after a '#' that starts a comment on its line?"""
    start = text.rfind("\n", 0, lk.offset) + 1
    before = text[start : lk.offset]
    if before.lstrip().startswith("#"):
        return True
    in_single = in_double = False
    for i, ch in enumerate(before):
        if ch == "'" and not in_double:
            in_single = not in_single
        elif ch == '"' and not in_single:
            in_double = not in_double
        elif ch == "#" and not in_single and not in_double and (i == 0 or before[i - 1] in " \t"):
            return True
    return False
