"""Repository governance as code: apply .github/rulesets/*.json and .github/environments/*.json to GitHub.

    python scripts/apply_github_settings.py --repo OWNER/NAME            # dry run: print what would change
    python scripts/apply_github_settings.py --repo OWNER/NAME --apply    # make the changes
    python scripts/apply_github_settings.py --sync-required-checks       # main.json's checks := ci.yml's jobs

Dry run is the default: nothing is written. With a token (GITHUB_TOKEN or GH_TOKEN in the environment; a
fine-grained token with "Administration: read and write" on the repository, plus "Members: read" on the
organisation to resolve team reviewers) the dry run also reads the current settings to say create or update;
without one it prints the requests it would send. The token is sent only to the API URL and never printed.

What it does, through the GitHub REST API (version 2022-11-28):
  - rulesets: each file is one ruleset, matched by name: POST /repos/{repo}/rulesets or PUT .../{id};
  - environments: PUT /repos/{repo}/environments/{name} (reviewers as team slugs or user logins, resolved to
    ids; wait timer; prevent self-review; deployment branch policy), then the environment's deployment
    branch policies made exactly the listed ones (POST missing, DELETE others).
Keys starting with "$" (comments) are not sent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULESETS = ROOT / ".github" / "rulesets"
ENVIRONMENTS = ROOT / ".github" / "environments"
CI_WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
API = "https://api.github.com"
GITHUB_ACTIONS_APP_ID = 15368  # the integration that reports workflow job checks
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SettingsError(Exception):
    pass


@dataclass
class Request:
    method: str
    path: str
    body: Any = None


@dataclass
class Client:
    """The GitHub REST API; writes are only recorded unless `apply` is set."""

    api: str
    token: str | None
    apply: bool
    sent: list[Request] = field(default_factory=list)
    opener: Callable[..., Any] = urllib.request.urlopen

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.api)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
            raise SettingsError(f"{self.api}: the API must be https (a token is sent to it)")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if method != "GET" and not self.apply:
            self.sent.append(Request(method, path, body))
            return None
        if self.token is None:
            raise SettingsError(f"{method} {path}: needs a token (GITHUB_TOKEN or GH_TOKEN)")
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __post_init__
            self.api.rstrip("/") + path,
            data=data,
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
                "User-Agent": "rampart-apply-github-settings",
            },
        )
        self.sent.append(Request(method, path, body))
        try:
            with self.opener(request, timeout=30) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise SettingsError(f"{method} {path}: HTTP {error.code}: {detail}") from None
        return json.loads(text) if text.strip() else None

    def read(self, path: str) -> Any:
        """A GET when a token is available; None (unknown) in a dry run without one."""
        if self.token is None:
            return None
        return self.call("GET", path)


def document(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: not a JSON object")
    return {k: v for k, v in data.items() if not k.startswith("$")}


def gate_job_names(workflow: Path = CI_WORKFLOW) -> list[str]:
    """The check names the gate's jobs report on a pull request: each job's `name`, or its id."""
    jobs = (yaml.safe_load(workflow.read_text(encoding="utf-8")) or {}).get("jobs") or {}
    names = []
    for job_id, job in jobs.items():
        if (job or {}).get("strategy", {}).get("matrix"):
            raise SettingsError(f"{workflow.name}: job {job_id} has a matrix: list its expanded check names")
        name = str((job or {}).get("name") or job_id)
        if "${{" in name:
            raise SettingsError(f"{workflow.name}: job {job_id}'s name is an expression")
        names.append(name)
    return names


def required_checks(ruleset: dict[str, Any]) -> list[str]:
    for rule in ruleset.get("rules") or []:
        if rule.get("type") == "required_status_checks":
            return [c["context"] for c in rule["parameters"]["required_status_checks"]]
    return []


def sync_required_checks(path: Path = RULESETS / "main.json", workflow: Path = CI_WORKFLOW) -> bool:
    """Rewrite the ruleset's required checks as exactly the gate's job names; True if it changed."""
    data = json.loads(path.read_text(encoding="utf-8"))
    wanted = [{"context": n, "integration_id": GITHUB_ACTIONS_APP_ID} for n in gate_job_names(workflow)]
    for rule in data["rules"]:
        if rule.get("type") == "required_status_checks":
            if rule["parameters"]["required_status_checks"] == wanted:
                return False
            rule["parameters"]["required_status_checks"] = wanted
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return True


def apply_ruleset(client: Client, repo: str, ruleset: dict[str, Any]) -> str:
    existing = client.read(f"/repos/{repo}/rulesets?includes_parents=false&per_page=100")
    match = next((r for r in existing or [] if r.get("name") == ruleset["name"]), None)
    if match is None:
        client.call("POST", f"/repos/{repo}/rulesets", ruleset)
        return f"ruleset {ruleset['name']}: create" + ("" if existing is not None else " or update (no token to read)")
    client.call("PUT", f"/repos/{repo}/rulesets/{match['id']}", ruleset)
    return f"ruleset {ruleset['name']}: update (id {match['id']})"


def reviewer_id(client: Client, reviewer: dict[str, Any]) -> int | str:
    if "id" in reviewer:
        return int(reviewer["id"])
    if reviewer["type"] == "Team":
        org, _, slug = str(reviewer["slug"]).partition("/")
        found = client.read(f"/orgs/{org}/teams/{slug}")
    else:
        found = client.read(f"/users/{reviewer['login']}")
    if found is None:
        return f"<id of {reviewer.get('slug') or reviewer.get('login')}>"
    return int(found["id"])


def apply_environment(client: Client, repo: str, environment: dict[str, Any]) -> str:
    name = environment["name"]
    path = f"/repos/{repo}/environments/{urllib.parse.quote(name, safe='')}"
    body = {
        "wait_timer": environment.get("wait_timer", 0),
        "prevent_self_review": environment.get("prevent_self_review", False),
        "reviewers": [{"type": r["type"], "id": reviewer_id(client, r)} for r in environment.get("reviewers", [])],
        "deployment_branch_policy": environment["deployment_branch_policy"],
    }
    client.call("PUT", path, body)
    wanted = {(p["name"], p.get("type", "branch")) for p in environment.get("branch_policies", [])}
    current = client.read(f"{path}/deployment-branch-policies?per_page=100")
    have = {(p["name"], p.get("type", "branch")): p["id"] for p in (current or {}).get("branch_policies", [])}
    for policy_name, kind in sorted(wanted - set(have)):
        client.call("POST", f"{path}/deployment-branch-policies", {"name": policy_name, "type": kind})
    for key in sorted(set(have) - wanted):
        client.call("DELETE", f"{path}/deployment-branch-policies/{have[key]}")
    return f"environment {name}: reviewers {len(body['reviewers'])}, branches {sorted(n for n, _ in wanted)}"


def run(client: Client, repo: str, rulesets: Path = RULESETS, environments: Path = ENVIRONMENTS) -> list[str]:
    if not repo or repo.count("/") != 1:
        raise SettingsError(f"--repo {repo!r}: expected OWNER/NAME")
    notes = [apply_ruleset(client, repo, document(p)) for p in sorted(rulesets.glob("*.json"))]
    notes += [apply_environment(client, repo, document(p)) for p in sorted(environments.glob("*.json"))]
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY", ""), help="OWNER/NAME")
    parser.add_argument("--apply", action="store_true", help="make the changes (default: dry run)")
    parser.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL", API))
    parser.add_argument("--sync-required-checks", action="store_true", help="rewrite main.json from ci.yml")
    args = parser.parse_args(argv)
    try:
        if args.sync_required_checks:
            changed = sync_required_checks()
            print(f"==> [github-settings] main.json required checks {'updated' if changed else 'already current'}")
            return 0
        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None
        if args.apply and token is None:
            raise SettingsError("--apply needs a token in GITHUB_TOKEN or GH_TOKEN")
        client = Client(args.api_url, token, args.apply)
        notes = run(client, args.repo)
    except SettingsError as error:
        print(f"==> [github-settings] FAIL: {error}", file=sys.stderr)
        return 2
    mode = "applied" if args.apply else "dry run (nothing written; --apply to write)"
    print(f"==> [github-settings] {args.repo}: {mode}")
    for note in notes:
        print(f"    {note}")
    for request in client.sent:
        if request.method != "GET":
            print(f"    {request.method} {request.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
