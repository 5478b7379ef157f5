"""One source of truth for the digests (issue 13): dist/lambda/SHA256SUMS is derived from manifest.json and checked
against it by `make verify-artifacts`, which needs nothing outside the standard library (the plan, apply and deploy
jobs run it with the runner's python3 before they assume a role, installing nothing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gates.fake_dist import REPO, fake_dist

COMMIT = "c0ffee" * 6 + "c0ff"


def verify(dist: Path, *python_flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *python_flags, str(REPO / "scripts" / "build_manifest.py"), "verify", "--dir", str(dist),
         "--commit", COMMIT],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_a_consistent_dist_verifies_with_the_standard_library_alone(tmp_path: Path) -> None:
    dist = tmp_path / "lambda"
    fake_dist(dist, COMMIT)
    result = verify(dist, "-S")  # -S: no site-packages, so nothing installed can be imported
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every artifact matches the manifest" in result.stdout
    # The derived file still serves coreutils alone.
    check = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0 and check.stdout.count(": OK") == 4, check.stdout


@pytest.mark.parametrize("edit", ["digest", "line-dropped", "line-added", "missing"])
def test_sha256sums_that_disagrees_with_the_manifest_fails(tmp_path: Path, edit: str) -> None:
    dist = tmp_path / "lambda"
    fake_dist(dist, COMMIT)
    sums = dist / "SHA256SUMS"
    lines = sums.read_text().splitlines(keepends=True)
    if edit == "digest":
        sums.write_text("0" * 64 + lines[0][64:] + "".join(lines[1:]))
    elif edit == "line-dropped":
        sums.write_text("".join(lines[1:]))
    elif edit == "line-added":
        sums.write_text("".join(lines) + "0" * 64 + "  evil.zip\n")
    else:
        sums.unlink()
    result = verify(dist)
    assert result.returncode == 1
    assert "FAIL: SHA256SUMS:" in result.stdout


def test_a_zip_changed_after_the_build_fails(tmp_path: Path) -> None:
    dist = tmp_path / "lambda"
    fake_dist(dist, COMMIT)
    with (dist / "api.zip").open("ab") as handle:
        handle.write(b"\0")
    result = verify(dist)
    assert result.returncode == 1 and "FAIL: api.zip: sha256" in result.stdout
