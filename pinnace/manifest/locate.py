"""Field paths -> source positions: place a FieldProblem (e.g. from the store) on a line of a file."""

from __future__ import annotations

from pinnace.manifest.nodes import Position


def parent_path(path: str) -> str:
    """ "a.b[0].c" -> "a.b[0]" -> "a.b" -> "a" -> "" (map keys in brackets may contain dots)."""
    if path.endswith("]"):
        return path[: path.rfind("[")]
    depth = 0
    for i in range(len(path) - 1, -1, -1):
        ch = path[i]
        if ch == "]":
            depth += 1
        elif ch == "[":
            depth -= 1
        elif ch == "." and depth == 0:
            return path[:i]
    return ""


def nearest(positions: dict[str, Position], path: str) -> Position:
    """The position of the path, or of its closest ancestor that the source has; (0, 0) if none."""
    p = path
    while True:
        if p in positions:
            return positions[p]
        if not p:
            return (0, 0)
        p = parent_path(p)


def locate(filename: str, text: str, field_path: str, document: int = 0) -> Position | None:
    """(line, column) in the text of field_path in the document-th object; None if unparseable."""
    from pinnace.manifest.document import decode_document
    from pinnace.manifest.parse import parse_text

    parsed = parse_text(text, filename)
    if not parsed.documents:
        return None
    decoded = [d for node in parsed.documents for d in decode_document(node, filename)]
    if not 0 <= document < len(decoded):
        return None
    return nearest(decoded[document].positions, field_path)
