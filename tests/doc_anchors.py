"""Markdown headings as GitHub anchors them, and the `file.md#anchor` references the repository makes."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
# path.md#anchor, the path optionally relative (../) or in folders; not preceded by a word, a slash or a dot.
REFERENCE = re.compile(r"(?<![\w/.-])((?:\.\./)*(?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)")
SAME_FILE = re.compile(r"\]\(#([\w-]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file (a repeated heading gets -1, -2, ... as on GitHub)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def references(path: Path) -> list[tuple[Path | None, str, str]]:
    """(resolved file or None, as written, anchor) of every `x.md#anchor` and `](#anchor)` in ``path``."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[Path | None, str, str]] = []
    for written, anchor in REFERENCE.findall(text):
        candidates = [(path.parent / written).resolve(), (REPO / written).resolve()]
        target = next((c for c in candidates if c.is_file()), None)
        found.append((target, written, anchor))
    if path.suffix == ".md":
        found += [(path, f"#{anchor}", anchor) for anchor in SAME_FILE.findall(text)]
    return found
