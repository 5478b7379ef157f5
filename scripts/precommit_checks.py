"""Small local equivalents of pre-commit-hooks' checks (its repository cannot be cloned on these machines).

    python scripts/precommit_checks.py yaml FILE...        every document parses (safe loader)
    python scripts/precommit_checks.py json FILE...        parses as JSON
    python scripts/precommit_checks.py whitespace FILE...  no trailing whitespace, one final newline, no
                                                           merge-conflict markers, no CRLF

Check-only: nothing is rewritten, so the hooks are safe to run over a shared working tree (`make test`).
Exit status 1 when any file fails; each failure is printed as file:line: message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

CONFLICT_MARKERS = (b"<<<<<<< ", b"=======\n", b">>>>>>> ")


def check_yaml(path: Path) -> list[str]:
    try:
        list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return [f"{path}: invalid YAML: {exc}".replace("\n", " ")]
    return []


def check_json(path: Path) -> list[str]:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{path}: invalid JSON: {exc}"]
    return []


def check_whitespace(path: Path) -> list[str]:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return []  # binary
    problems = []
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        line = raw
        if line.endswith(b"\r"):
            problems.append(f"{path}:{number}: CRLF line ending")
            line = line[:-1]
        if line != line.rstrip(b" \t"):
            problems.append(f"{path}:{number}: trailing whitespace")
        if line.startswith(CONFLICT_MARKERS[0]) or line.startswith(CONFLICT_MARKERS[2]):
            problems.append(f"{path}:{number}: merge conflict marker")
    if data and not data.endswith(b"\n"):
        problems.append(f"{path}: no newline at end of file")
    elif data.endswith(b"\n\n"):
        problems.append(f"{path}: blank lines at end of file")
    return problems


CHECKS = {"yaml": check_yaml, "json": check_json, "whitespace": check_whitespace}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    check = CHECKS[argv[0]]
    problems = [p for name in argv[1:] for p in check(Path(name))]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
