"""Repository governance as code (issue 13 item 7): the main ruleset requires exactly the gate's jobs, every
environment a workflow uses is protected, CODEOWNERS covers every file that defines a gate, and
scripts/apply_github_settings.py applies it all through the GitHub REST API (dry run by default)."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gates.source_tree import REPO
from tests.gates.workflow_model import WORKFLOWS, all_workflows, is_deploy_job

sys.path.insert(0, str(REPO / "scripts"))
import apply_github_settings as settings

RULESET = REPO / ".github" / "rulesets" / "main.json"
ENVIRONMENTS = REPO / ".github" / "environments"
TOKEN = "ghp_test_token_never_printed"  # pragma: allowlist secret - a test value for a fake server


def ruleset() -> dict[str, Any]:
    return settings.document(RULESET)


def rule(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [r for r in doc["rules"] if r["type"] == kind]
    assert len(found) == 1, f"{kind} rule missing or repeated"
    return found[0]


def test_required_checks_are_exactly_the_gate_job_names() -> None:
    """Read from ci.yml now: a renamed, added or removed gate job fails here until main.json follows
    (`python scripts/apply_github_settings.py --sync-required-checks`)."""
    required = settings.required_checks(ruleset())
    jobs = settings.gate_job_names()
    assert len(required) == len(set(required))
    assert sorted(required) == sorted(jobs)
    assert {
        c["integration_id"] for c in rule(ruleset(), "required_status_checks")["parameters"]["required_status_checks"]
    } == {settings.GITHUB_ACTIONS_APP_ID}


def test_every_required_check_names_a_job_that_exists_and_a_rename_is_caught(tmp_path: Path) -> None:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    names = {str(j.get("name") or k) for k, j in ci["jobs"].items()}
    assert set(settings.required_checks(ruleset())) <= names
    renamed = tmp_path / "ci.yml"
    first = next(iter(ci["jobs"]))
    ci["jobs"][first]["name"] = "lint (renamed)"
    renamed.write_text(yaml.safe_dump(ci))
    assert set(settings.required_checks(ruleset())) - set(settings.gate_job_names(renamed))
    copy = shutil.copyfile(RULESET, tmp_path / "main.json")
    assert settings.sync_required_checks(copy, renamed) is True
    assert "lint (renamed)" in settings.required_checks(settings.document(copy))
    assert settings.sync_required_checks(copy, renamed) is False


def test_the_main_ruleset_protects_main() -> None:
    doc = ruleset()
    assert doc["target"] == "branch" and doc["enforcement"] == "active"
    assert doc["conditions"]["ref_name"]["include"] in (["~DEFAULT_BRANCH"], ["refs/heads/main"])
    assert doc["bypass_actors"] == []  # nobody, admins included, merges around the gate
    for kind in ("deletion", "non_fast_forward", "required_linear_history"):
        rule(doc, kind)
    review = rule(doc, "pull_request")["parameters"]
    assert review["required_approving_review_count"] >= 1
    assert review["require_code_owner_review"] is True
    assert review["dismiss_stale_reviews_on_push"] is True and review["require_last_push_approval"] is True
    assert "merge" not in review["allowed_merge_methods"]  # linear history
    assert rule(doc, "required_status_checks")["parameters"]["strict_required_status_checks_policy"] is True


def used_environments() -> dict[str, bool]:
    """Environment name -> whether some job that uses it deploys (tests/gates/workflow_model.py)."""
    used: dict[str, bool] = {}
    for doc in all_workflows().values():
        for job in doc["jobs"].values():
            env = job.get("environment")
            name = env.get("name") if isinstance(env, dict) else env
            if name:
                used[name] = used.get(name, False) or is_deploy_job(job)
    return used


def test_every_environment_a_workflow_uses_is_protected() -> None:
    used = used_environments()
    assert {"production", "dependency-updates"} <= set(used)
    files = {p.stem: settings.document(p) for p in ENVIRONMENTS.glob("*.json")}
    assert set(files) == set(used), "an environment without protection rules, or rules for an unused one"
    for name, deploys in used.items():
        env = files[name]
        assert env["name"] == name
        assert env["deployment_branch_policy"] == {"protected_branches": False, "custom_branch_policies": True}
        assert env["branch_policies"] == [{"name": "main", "type": "branch"}], name
        if deploys:
            assert env["reviewers"] and env["prevent_self_review"] is True, f"{name}: deploys without a reviewer"


# ---- CODEOWNERS --------------------------------------------------------------------------------------

GATE_PATHS = ["Makefile", "mk/", "pyproject.toml", "scripts/", "tests/gates/", "tests/policies/", "policies/",
              ".github/", "security/"]  # fmt: skip


def owners(codeowners: str, path: str) -> list[str]:
    """The owners GitHub assigns to `path`: the last matching pattern wins (anchored, directory or glob)."""
    result: list[str] = []
    for raw in codeowners.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, *names = line.split()
        anchored = pattern.startswith("/")
        pattern = pattern.lstrip("/")
        if pattern == "*":
            matched = True
        elif pattern.endswith("/"):
            matched = path.startswith(pattern) if anchored else f"/{pattern}" in f"/{path}"
        else:
            matched = fnmatch.fnmatchcase(path, pattern) or (
                not anchored and fnmatch.fnmatchcase(path.rsplit("/", maxsplit=1)[-1], pattern)
            )
        if matched:
            result = names
    return result


def test_codeowners_covers_every_file_that_defines_a_gate() -> None:
    codeowners = (REPO / ".github" / "CODEOWNERS").read_text(encoding="utf-8")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    checked = 0
    for gate in GATE_PATHS:
        files = [f for f in tracked if f == gate or (gate.endswith("/") and f.startswith(gate))] or [gate + "x"]
        for path in files:
            assert "@rampart/security" in owners(codeowners, path), path
            checked += 1
    assert checked > 40
    assert owners(codeowners, "src/rampart/api/handler.py") == ["@rampart/maintainers"]  # the matcher can say no


# ---- scripts/apply_github_settings.py against a fake GitHub -----------------------------------------


class FakeGitHub:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any, str]] = []
        self.rulesets: list[dict[str, Any]] = []
        self.branch_policies: dict[str, list[dict[str, Any]]] = {"production": [{"id": 5, "name": "release/*"}]}

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        route = path.split("?", maxsplit=1)[0]
        if route == "/repos/acme/rampart/rulesets":
            if method == "GET":
                return 200, self.rulesets
            self.rulesets.append({"id": 7, "name": body["name"]})
            return 201, {"id": 7}
        if route.startswith("/repos/acme/rampart/rulesets/"):
            return 200, {"id": int(route.rsplit("/", 1)[1])}
        if route == "/orgs/rampart/teams/security":
            return 200, {"id": 42, "slug": "security"}
        if route.startswith("/repos/acme/rampart/environments/"):
            parts = route.split("/")
            env = parts[5]
            policies = self.branch_policies.setdefault(env, [])
            if len(parts) == 6:
                return 200, {"name": env}
            if method == "GET":
                return 200, {"branch_policies": policies}
            if method == "POST":
                policies.append({"id": 100 + len(policies), "name": body["name"], "type": body["type"]})
                return 200, policies[-1]
            if method == "DELETE":
                policies[:] = [p for p in policies if p["id"] != int(parts[-1])]
                return 204, None
        return 404, {"message": f"no route {method} {route}"}


@pytest.fixture
def github() -> Iterator[tuple[str, FakeGitHub]]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.requests.append((self.command, self.path, body, self.headers.get("Authorization", "")))
            status, payload = fake.handle(self.command, self.path, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()


def apply(url: str, monkeypatch: pytest.MonkeyPatch, *extra: str, token: str | None = TOKEN) -> int:
    monkeypatch.delenv("GH_TOKEN", raising=False)
    if token is None:
        monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    else:
        monkeypatch.setenv("GITHUB_TOKEN", token)
    return settings.main(["--repo", "acme/rampart", "--api-url", url, *extra])


def test_dry_run_reads_but_writes_nothing(
    github: tuple[str, FakeGitHub], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = github
    assert apply(url, monkeypatch) == 0
    assert {method for method, *_ in fake.requests} == {"GET"}
    out = capsys.readouterr().out
    assert "dry run" in out and "POST /repos/acme/rampart/rulesets" in out
    assert "PUT /repos/acme/rampart/environments/production" in out
    assert TOKEN not in out


def test_apply_creates_then_updates_and_makes_branch_policies_exact(
    github: tuple[str, FakeGitHub], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = github
    assert apply(url, monkeypatch, "--apply") == 0
    writes = [(m, p.split("?")[0], b) for m, p, b, _ in fake.requests if m != "GET"]
    post = next(b for m, p, b in writes if (m, p) == ("POST", "/repos/acme/rampart/rulesets"))
    assert post == ruleset() and "$comment" not in post
    production = next(b for m, p, b in writes if p == "/repos/acme/rampart/environments/production")
    assert production["reviewers"] == [{"type": "Team", "id": 42}] and production["prevent_self_review"] is True
    assert fake.branch_policies["production"] == [{"id": 101, "name": "main", "type": "branch"}]  # release/* gone
    assert fake.branch_policies["dependency-updates"] == [{"id": 100, "name": "main", "type": "branch"}]
    assert all(auth == f"Bearer {TOKEN}" for *_, auth in fake.requests)
    fake.requests.clear()
    assert apply(url, monkeypatch, "--apply") == 0  # second run: the ruleset exists, so it is updated
    assert ("PUT", "/repos/acme/rampart/rulesets/7") in [(m, p) for m, p, *_ in fake.requests]
    assert not [p for m, p, *_ in fake.requests if m == "POST"]
    assert TOKEN not in capsys.readouterr().out


def test_apply_refuses_without_a_token_or_over_plain_http(
    github: tuple[str, FakeGitHub], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, fake = github
    assert apply(url, monkeypatch, "--apply", token=None) == 2
    assert apply("http://api.github.example", monkeypatch) == 2
    assert fake.requests == []


def test_dry_run_without_a_token_lists_the_requests(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(settings.API, monkeypatch, token=None) == 0  # no token: no request leaves the machine
    out = capsys.readouterr().out
    assert "create or update (no token to read)" in out and "PUT /repos/acme/rampart/environments/production" in out
