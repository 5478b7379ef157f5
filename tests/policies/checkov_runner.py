"""Run checkov (its own venv) once per fixture set and index the results: (check_id, file, resource) -> result."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
POLICIES = REPO / "policies" / "checkov"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Every Rampart policy; policies/README.md documents each one.
TERRAFORM_IDS = {
    "CKV_RAMPART_1", "CKV2_RAMPART_2", "CKV_RAMPART_4", "CKV_RAMPART_5", "CKV2_RAMPART_6", "CKV2_RAMPART_7",
    "CKV_RAMPART_8", "CKV2_RAMPART_9", "CKV2_RAMPART_10", "CKV_RAMPART_11", "CKV_RAMPART_12", "CKV_RAMPART_13",
    "CKV_RAMPART_17", "CKV_RAMPART_18",
}  # fmt: skip
WORKFLOW_IDS = {"CKV_RAMPART_14", "CKV_RAMPART_15", "CKV_RAMPART_16", "CKV_RAMPART_19"}
ALL_IDS = TERRAFORM_IDS | WORKFLOW_IDS


@dataclass(frozen=True)
class Result:
    check_id: str
    file: str  # the file's name, e.g. main.tf or deploy.yml
    resource: str
    passed: bool
    severity: str | None


def ensure_checkov() -> None:
    """`make checkov-install` (a no-op when .venv-checkov is current): the tests never skip for want of it."""
    subprocess.run(["make", "--no-print-directory", "checkov-install"], cwd=REPO, check=True)


def run_checkov(
    *dirs: Path, frameworks: tuple[str, ...] = ("terraform", "github_actions"), only_rampart: bool = True
) -> list[Result]:
    cmd = [str(CHECKOV), "--skip-download", "--compact", "-o", "json", "--external-checks-dir", str(POLICIES)]
    cmd += ["--framework", *frameworks]
    if only_rampart:
        cmd += ["--check", "CKV_RAMPART_*,CKV2_RAMPART_*"]
    for directory in dirs:
        cmd += ["-d", str(directory)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode in (0, 1), f"checkov crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    assert "Cannot load external check" not in proc.stderr, proc.stderr[-2000:]
    # One JSON document per scanned directory, each a report or a list of reports (one per framework).
    reports: list[dict[str, Any]] = []
    decoder, text, at = json.JSONDecoder(), proc.stdout, 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        reports += document if isinstance(document, list) else [document]
    results = []
    for report in reports:
        for key, passed in (("passed_checks", True), ("failed_checks", False)):
            for check in report.get("results", {}).get(key, []):
                results.append(
                    Result(
                        check["check_id"],
                        Path(check["file_path"]).name,
                        check["resource"],
                        passed,
                        check.get("severity"),
                    )
                )
    return results
