"""Every dependency is pinned by version and sha256, and every install refuses an unhashed requirement."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = sorted((ROOT / "requirements").glob("*.txt"))
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?P<spec>\S*)")


def _entries(lock: Path) -> list[tuple[str, str, list[str]]]:
    """(name, version spec, hashes) per requirement; continuation lines carry the hashes."""
    entries: list[tuple[str, str, list[str]]] = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("--hash="):
            entries[-1][2].append(stripped.split("=", 1)[1].rstrip(" \\"))
        elif not line.startswith(" "):
            match = REQUIREMENT.match(stripped)
            assert match, f"{lock.name}: cannot read {stripped!r}"
            entries.append((match["name"], match["spec"].rstrip(" \\;"), []))
    return entries


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_requirement_is_pinned_by_version_and_hash(lock: Path) -> None:
    entries = _entries(lock)
    assert len(entries) >= 5, f"{lock.name} looks empty"
    for name, spec, hashes in entries:
        assert re.fullmatch(r"==[0-9][0-9A-Za-z.+!-]*", spec), f"{lock.name}: {name} is not pinned (`{spec}`)"
        assert hashes and all(h.startswith("sha256:") and len(h) == 71 for h in hashes), f"{lock.name}: {name}"


def test_every_pip_install_of_a_lock_requires_hashes() -> None:
    makefiles = [ROOT / "Makefile", *(ROOT / "mk").glob("*.mk")]
    installs = [
        line
        for path in makefiles
        for line in path.read_text(encoding="utf-8").splitlines()
        if "pip install" in line and "-r requirements/" in line
    ]
    assert installs, "no install of a lock found"
    for line in installs:
        assert "--require-hashes" in line, line.strip()
