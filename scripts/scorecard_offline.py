"""`make scorecard-offline`: the OpenSSF Scorecard checks that need no GitHub API, on every gate run.

Scorecard itself (.github/workflows/scorecard.yml) runs on GitHub against the live repository; this runs the
same ideas locally, on the files, so a pull request cannot weaken them unnoticed:

  pinned-dependencies  every `uses:` pinned to a full commit SHA with its `# vX.Y.Z` comment (local ./ and
                       docker://...@sha256: allowed); every lock line hash-pinned; every `pip install` in
                       the Makefiles requires hashes (or installs this project itself with --no-deps);
                       no download piped into a shell
  token-permissions    top-level `permissions` present and {} or read-only; write scopes only where a job
                       needs them: security-events to upload SARIF, id-token to assume an AWS role or sign
                       provenance, attestations to attest; never write-all; contents/packages/
                       pull-requests/actions write nowhere (lock.yml writes with an App token instead)
  dangerous-workflow   no untrusted `${{ github.event.* }}` / `github.head_ref` in `run:` or a script
                       input; pull_request_target and workflow_run never check out the pull request's code
  branch-protection    a ruleset for the default branch: active, no bypass actors, pull requests with
                       code-owner review, stale approvals dismissed, required status checks, no force
                       push, no deletion; CODEOWNERS present
  security-policy, license, dependency-update-tool, sast   SECURITY.md, LICENSE, dependabot.yml or a
                       scheduled lock workflow, a CodeQL workflow

    python scripts/scorecard_offline.py [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(#.*)?$")
VERSION_COMMENT = re.compile(r"^#\s*v\d+(\.\d+)*\b")
REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*==")
PIPE_TO_SHELL = re.compile(r"\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+)?(ba|z|da)?sh\b")
# Scorecard's Dangerous-Workflow list of attacker-controlled contexts.
UNTRUSTED = re.compile(
    r"\$\{\{[^}]*\b("
    r"github\.head_ref|"
    r"github\.event\.(issue\.(title|body)|pull_request\.(title|body|head\.(ref|label|repo\.default_branch))|"
    r"comment\.body|review\.body|review_comment\.body|pages\.[^.}\s]*\.page_name|"
    r"commits\.[^.}\s]*\.(message|author\.(email|name))|head_commit\.(message|author\.(email|name))|"
    r"discussion\.(title|body)|workflow_run\.(head_branch|head_commit\.(message|author\.(email|name))))"
    r")\b"
)
PR_HEAD_REF = re.compile(
    r"github\.(event\.pull_request\.head\.(ref|sha)|head_ref|event\.workflow_run\.head_(sha|branch))"
)
# Write scopes a job may hold, and what the job must do to need it.
WRITE_NEEDS: dict[str, tuple[str, ...]] = {
    "security-events": ("github/codeql-action/upload-sarif", "github/codeql-action/analyze", "ossf/scorecard-action"),
    "id-token": ("aws-actions/configure-aws-credentials", "actions/attest-build-provenance", "actions/attest"),
    "attestations": ("actions/attest-build-provenance", "actions/attest"),
}

Findings = list[str]


def load_yaml(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if True in doc:  # YAML 1.1 reads `on` as true
        doc["on"] = doc.pop(True)
    return doc


def workflows(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        yield path, load_yaml(path)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses_of(job: dict[str, Any]) -> list[str]:
    found = [str(job["uses"])] if "uses" in job else []
    return found + [str(s["uses"]) for s in steps(job) if "uses" in s]


def action_name(uses: str) -> str:
    return uses.split("@", 1)[0]


def check_pinned_dependencies(root: Path) -> Findings:
    findings = []
    for path, _doc in workflows(root):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = USES_LINE.match(line)
            if not match:
                continue
            uses, comment = match.group(1).strip("'\""), match.group(2) or ""
            where = f"{path.name}:{number}"
            if uses.startswith("./"):
                continue
            if uses.startswith("docker://"):
                if "@sha256:" not in uses:
                    findings.append(f"{where}: container {uses} not pinned by digest")
                continue
            if not SHA_PIN.match(uses):
                findings.append(f"{where}: {uses} is not pinned to a full commit SHA")
            elif not VERSION_COMMENT.match(comment):
                findings.append(f"{where}: {uses} has no `# vX.Y.Z` version comment")
    for lock in sorted((root / "requirements").glob("*.txt")):
        findings += _unhashed_requirements(lock)
    for makefile in [root / "Makefile", *sorted((root / "mk").glob("*.mk"))]:
        if makefile.is_file():
            findings += _unpinned_installs(makefile)
    for path in _shell_sources(root):
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if PIPE_TO_SHELL.search(line):
                findings.append(f"{path.relative_to(root)}:{number}: a download piped into a shell")
    return findings


def _unhashed_requirements(lock: Path) -> Findings:
    findings = []
    lines = lock.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if not REQUIREMENT.match(line):
            continue
        block = [line]
        for follow in lines[index + 1 :]:
            if REQUIREMENT.match(follow) or not follow.startswith((" ", "\t")):
                break
            block.append(follow)
        if "--hash=sha256:" not in " ".join(block):
            findings.append(f"{lock.name}: {line.split()[0]} has no --hash")
    return findings


def _unpinned_installs(makefile: Path) -> Findings:
    findings = []
    text = makefile.read_text(encoding="utf-8").replace("\\\n", " ")
    for number, line in enumerate(text.splitlines(), 1):
        if not re.search(r"\bpip3?\b\S*\s+install\b", line) or line.lstrip().startswith("#"):
            continue
        if "--require-hashes" in line or ("--no-deps" in line and re.search(r"\s-e\s+\.(\s|$)", line)):
            continue
        findings.append(f"{makefile.name}:{number}: pip install without --require-hashes")
    return findings


def _shell_sources(root: Path) -> list[Path]:
    paths = [root / "Makefile", *sorted((root / "mk").glob("*.mk")), *sorted((root / "scripts").glob("*.sh"))]
    paths += sorted((root / ".github" / "workflows").glob("*.y*ml"))
    return [p for p in paths if p.is_file()]


def _write_scopes(permissions: Any) -> set[str]:
    if permissions == "write-all":
        return {"write-all"}
    if not isinstance(permissions, dict):
        return set()
    return {scope for scope, level in permissions.items() if level == "write"}


def check_token_permissions(root: Path) -> Findings:
    findings = []
    for path, doc in workflows(root):
        top = doc.get("permissions", "<missing>")
        if top == "<missing>":
            findings.append(f"{path.name}: no top-level permissions (the token gets the repository default)")
        elif top not in ({}, "read-all") and _write_scopes(top):
            findings.append(f"{path.name}: top-level permissions grant write: {sorted(_write_scopes(top))}")
        elif isinstance(top, dict) and any(level not in ("read", "none") for level in top.values()):
            findings.append(f"{path.name}: top-level permissions not read-only: {top}")
        for job_id, job in (doc.get("jobs") or {}).items():
            actions = {action_name(u) for u in uses_of(job)}
            for scope in sorted(_write_scopes(job.get("permissions"))):
                needs = WRITE_NEEDS.get(scope)
                if needs is None:
                    findings.append(f"{path.name} job {job_id}: `{scope}: write` is never needed by a gate job")
                elif not actions & set(needs) and "uses" not in job:
                    findings.append(f"{path.name} job {job_id}: `{scope}: write` but no step that needs it")
    return findings


def check_dangerous_workflow(root: Path) -> Findings:
    findings = []
    for path, doc in workflows(root):
        triggers = doc.get("on") or {}
        names = {triggers} if isinstance(triggers, str) else set(triggers)
        privileged = names & {"pull_request_target", "workflow_run"}
        for job_id, job in (doc.get("jobs") or {}).items():
            for step in steps(job):
                texts = [str(step.get("run") or "")]
                texts += [str(v) for k, v in (step.get("with") or {}).items() if k in ("script", "run")]
                for text in texts:
                    match = UNTRUSTED.search(text)
                    if match:
                        findings.append(f"{path.name} job {job_id}: untrusted {match.group(1)} in a script")
                uses = action_name(str(step.get("uses", "")))
                ref = str((step.get("with") or {}).get("ref", ""))
                if privileged and uses == "actions/checkout" and PR_HEAD_REF.search(ref):
                    findings.append(
                        f"{path.name} job {job_id}: {'/'.join(sorted(privileged))} checks out the pull request"
                    )
    return findings


def _includes_default_branch(ruleset: dict[str, Any]) -> bool:
    include = (ruleset.get("conditions") or {}).get("ref_name", {}).get("include", [])
    return bool(set(include) & {"~DEFAULT_BRANCH", "refs/heads/main"})


def _runs_make_lock(doc: dict[str, Any]) -> bool:
    return any("make lock" in str(s.get("run", "")) for job in (doc.get("jobs") or {}).values() for s in steps(job))


def check_branch_protection(root: Path) -> Findings:
    findings = []
    rulesets = []
    for path in sorted((root / ".github" / "rulesets").glob("*.json")):
        try:
            rulesets.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except ValueError as error:
            findings.append(f"{path.name}: not JSON: {error}")
    default = [(p, r) for p, r in rulesets if r.get("target") == "branch" and _includes_default_branch(r)]
    if not default:
        return [*findings, "no ruleset protects the default branch (.github/rulesets/*.json)"]
    for path, ruleset in default:
        rules = {r.get("type"): r.get("parameters") or {} for r in ruleset.get("rules") or []}
        if ruleset.get("enforcement") != "active":
            findings.append(f"{path.name}: enforcement is {ruleset.get('enforcement')!r}, not active")
        if ruleset.get("bypass_actors"):
            findings.append(f"{path.name}: bypass actors can merge around the gate")
        review = rules.get("pull_request")
        if review is None:
            findings.append(f"{path.name}: changes need no pull request")
        else:
            if int(review.get("required_approving_review_count") or 0) < 1:
                findings.append(f"{path.name}: no approving review required")
            if not review.get("require_code_owner_review"):
                findings.append(f"{path.name}: code-owner review not required")
            if not review.get("dismiss_stale_reviews_on_push"):
                findings.append(f"{path.name}: approvals survive new pushes")
        if not (rules.get("required_status_checks") or {}).get("required_status_checks"):
            findings.append(f"{path.name}: no required status checks")
        for kind, what in (("non_fast_forward", "force pushes"), ("deletion", "deletion")):
            if kind not in rules:
                findings.append(f"{path.name}: {what} of the branch allowed")
    if not (root / ".github" / "CODEOWNERS").is_file():
        findings.append("no .github/CODEOWNERS (code-owner review would require nobody)")
    return findings


def check_project_files(root: Path) -> Findings:
    findings = [f"no {name}" for name in ("SECURITY.md", "LICENSE") if not (root / name).is_file()]
    docs = dict(workflows(root))
    scheduled_lock = any("schedule" in (doc.get("on") or {}) and _runs_make_lock(doc) for doc in docs.values())
    if not (root / ".github" / "dependabot.yml").is_file() and not scheduled_lock:
        findings.append("no dependency update tool (dependabot.yml or a scheduled `make lock` workflow)")
    codeql = any("github/codeql-action/analyze" in {action_name(u) for j in d["jobs"].values() for u in uses_of(j)}
                 for d in docs.values())  # fmt: skip
    if not codeql:
        findings.append("no SAST workflow (github/codeql-action/analyze)")
    return findings


CHECKS: dict[str, Callable[[Path], Findings]] = {
    "pinned-dependencies": check_pinned_dependencies,
    "token-permissions": check_token_permissions,
    "dangerous-workflow": check_dangerous_workflow,
    "branch-protection": check_branch_protection,
    "project-files": check_project_files,
}


def run(root: Path) -> int:
    total = 0
    print(f"==> [scorecard-offline] Scorecard-style checks over {root}")
    for name, check in CHECKS.items():
        findings = check(root)
        total += len(findings)
        print(f"    {name:<20} {'pass' if not findings else f'FAIL ({len(findings)})'}")
        for finding in findings:
            print(f"      {finding}")
    print(f"==> [scorecard-offline] findings: {total}; {'PASS' if not total else 'FAIL'}")
    return 1 if total else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    return run(args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())
