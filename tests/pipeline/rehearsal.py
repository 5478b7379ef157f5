"""`make pipeline-rehearsal`: the workflows of .github/workflows run here, in GitHub's order, against moto.

Each job gets a fresh workspace; each `run:` step runs as written (bash -eo pipefail, the job's env); each `uses:`
step is replaced by a stand-in that does what the action does:
  actions/checkout                      a clone of the rehearsal's origin at the run's commit
  actions/setup-python                  the local toolchain: this checkout's .venv / .venv-checkov, linked in
  hashicorp/setup-terraform             the local terraform (version checked)
  actions/upload-/download-artifact     a folder per workflow run
  aws-actions/configure-aws-credentials an OIDC token with the claims GitHub would mint for the job
                                        (tests/pipeline/github_oidc.py), exchanged for emulator credentials only
                                        if the role's trust policy, as applied into moto, admits them
                                        (tests/pipeline/iam_eval.py); otherwise the step fails
  github/codeql-action/upload-sarif     nothing (no code scanning here)
  step-security/harden-runner           checks the step as the agent would read it (block mode, every rendered entry
                                        host:port, no wildcard but the reasoned one) and records the job's allow-list;
                                        egress is NOT blocked here (no agent). What is checked against the list: the
                                        STS endpoint the credentials step uses, and every `aws` CLI call the job makes
                                        (service endpoint in the region, or the bucket's host)
  actions/attest-build-provenance       mints the job's OIDC token claims (only with id-token and attestations
                                        write, as capped by a calling job) and stores one SLSA provenance statement
                                        per file with the certificate fields Fulcio would copy from them
                                        (tests/pipeline/attestations.py); nothing is signed (no Sigstore here)
  `gh attestation verify` (on PATH)     checks the deploy script's policy flags against those statements
What moto cannot do is stood in for, and said so: AWS Signer (an `aws` wrapper answers `aws signer ...` by
copying the unsigned object to signed/), the API behind API Gateway for the smoke test (a loopback server that
accepts exactly the enabled keys of the smoke-test client's usage plan), and the RDS CA download (a `curl`
wrapper serves a locally generated certificate named Amazon RDS for that one URL). The Terraform provider and
backend are pointed at moto by *_override.tf files written into each checkout (as `make iac-emulate` does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from tests.iac.emulator import FUNCTIONS_OVERRIDE, PUBSUB_OVERRIDE, SERVICES
from tests.pipeline import attestations
from tests.pipeline.github_oidc import JobContext, NoToken, Repository, may_assume, mint_claims, unsigned_jwt

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account
REGION = "eu-central-1"
STACK = "rampart-prod"
START = time.monotonic()
GIT_ENV = {
    "GIT_AUTHOR_NAME": "rehearsal",
    "GIT_AUTHOR_EMAIL": "rehearsal@example.invalid",
    "GIT_COMMITTER_NAME": "rehearsal",
    "GIT_COMMITTER_EMAIL": "rehearsal@example.invalid",
}
THIS_REPOSITORY = Repository("rampart-project", "rampart", owner_id=98765432, repo_id=123456789)
GITHUB_TOKEN_STAND_IN = "rehearsal-read-only-github-token"  # pragma: allowlist secret - not a credential
# harden-runner entries the rehearsal accepts with a wildcard: tests/gates/test_egress.py's reasoned exceptions.
ALLOWED_WILDCARD = re.compile(r"^rampart-[a-z]+-lambda-artifacts-\*\.s3\.[a-z0-9-]+\.amazonaws\.com:443$")
RENDERED_ENTRY = re.compile(r"^[a-z0-9*](?:[a-z0-9.*-]*[a-z0-9])?:[0-9]+$")


def progress(message: str) -> None:
    print(f"==> [rehearsal +{time.monotonic() - START:5.0f}s] {message}", flush=True)


def sh(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def load_workflow(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


# ------------------------------------------------------------------------------------------------------------
# Expressions: exactly the forms the workflows use (contexts, ==, !=, &&, ||, !, status functions)
# ------------------------------------------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(\|\||&&|==|!=|!|\(|\)|'[^']*'|[A-Za-z_][A-Za-z0-9_.\-]*\(\)|[A-Za-z_][A-Za-z0-9_.\-]*)")


def evaluate_expression(expr: str, lookup: Callable[[str], Any]) -> Any:
    out, at = [], 0
    expr = expr.strip()
    while at < len(expr):
        match = TOKEN.match(expr, at)
        if not match:
            raise ValueError(f"cannot parse expression {expr!r} at {at}")
        token, at = match.group(1), match.end()
        if token in {"||", "&&", "!"}:
            out.append({"||": " or ", "&&": " and ", "!": " not "}[token])
        elif token in {"==", "!=", "(", ")"}:
            out.append(token)
        elif token.startswith("'"):
            out.append(repr(token[1:-1]))
        elif token in {"true", "false"}:
            out.append(repr(token == "true"))
        else:
            out.append(repr(lookup(token)))
    return eval("".join(out), {"__builtins__": {}}, {})


def render(value: Any, lookup: Callable[[str], Any]) -> Any:
    if not isinstance(value, str):
        return value
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str(evaluate_expression(m.group(1), lookup)), value)


# ------------------------------------------------------------------------------------------------------------
# Runs, jobs, steps
# ------------------------------------------------------------------------------------------------------------


@dataclass
class WorkflowRun:
    workflow: str
    event_name: str
    ref: str
    sha: str
    run_id: int
    artifacts: Path
    from_fork: bool = False
    jobs: dict[str, JobResult] = field(default_factory=dict)


@dataclass
class JobResult:
    name: str
    result: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (label, outcome)
    roles: list[str] = field(default_factory=list)
    workspace: Path | None = None
    allowed_endpoints: list[str] = field(default_factory=list)  # harden-runner's list, rendered
    attested: list[str] = field(default_factory=list)  # file names the attest stand-in recorded


class Rehearsal:
    def __init__(self, workdir: Path, moto_url: str, gate_mode: str, reused_targets: set[str]) -> None:
        self.workdir = workdir
        self.moto_url = moto_url
        self.gate_mode = gate_mode
        self.reused_targets = reused_targets
        self.origin = workdir / "origin.git"
        self.stand_ins = workdir / "stand-ins"
        self.vars: dict[str, str] = {}
        self.role_arns: dict[str, str] = {}
        self.next_run = 1000
        self.assumed: list[tuple[str, str, str]] = []  # (workflow/job, role purpose, sub)
        self.extra_env: dict[str, str] = {}
        # The permissions of a job that calls a reusable workflow cap that workflow's jobs (GitHub's rule).
        self.caps: dict[str, dict[str, str]] = {}
        self.attestation_store = workdir / "attestations.jsonl"

    # -- git origin ------------------------------------------------------------------------------------------
    def make_origin(self) -> str:
        head = sh("git", "-C", str(REPO), "rev-parse", "HEAD").strip()
        if sh("git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no").strip():
            progress("note: uncommitted changes are not rehearsed (the rehearsal clones HEAD)")
        sh("git", "clone", "--quiet", "--bare", "--no-local", str(REPO), str(self.origin))
        sh("git", "-C", str(self.origin), "update-ref", "refs/heads/main", head)
        return head

    def commit(self, branch: str, message: str, edit: Callable[[Path], None], base: str = "main") -> str:
        scratch = self.workdir / f"edit-{branch}-{int(time.monotonic() * 1000)}"
        sh("git", "clone", "--quiet", "--branch", base, str(self.origin), str(scratch))
        if branch != base:
            sh("git", "-C", str(scratch), "checkout", "--quiet", "-b", branch)
        edit(scratch)
        env = {**os.environ, **GIT_ENV}
        sh("git", "-C", str(scratch), "commit", "--quiet", "-am", message, env=env)
        sh("git", "-C", str(scratch), "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", env=env)
        sha = sh("git", "-C", str(scratch), "rev-parse", "HEAD").strip()
        shutil.rmtree(scratch)
        return sha

    def merge_ref(self, head_branch: str, number: int) -> str:
        """refs/pull/<n>/merge: the test merge of the pull request into main, what pull_request runs check out."""
        scratch = self.workdir / f"merge-{number}"
        sh("git", "clone", "--quiet", "--branch", "main", str(self.origin), str(scratch))
        env = {**os.environ, **GIT_ENV}
        sh("git", "-C", str(scratch), "fetch", "--quiet", "origin", head_branch, env=env)
        sh(
            "git",
            "-C",
            str(scratch),
            "merge",
            "--quiet",
            "--no-ff",
            "-m",
            f"Merge pull request #{number}",
            "FETCH_HEAD",
            env=env,
        )
        sh("git", "-C", str(scratch), "push", "--quiet", "origin", f"HEAD:refs/pull/{number}/merge", env=env)
        sha = sh("git", "-C", str(scratch), "rev-parse", "HEAD").strip()
        shutil.rmtree(scratch)
        return sha

    def set_main(self, sha: str) -> None:
        sh("git", "-C", str(self.origin), "update-ref", "refs/heads/main", sha)

    # -- runs ------------------------------------------------------------------------------------------------
    def new_run(self, workflow: str, event_name: str, ref: str, sha: str, *, from_fork: bool = False) -> WorkflowRun:
        self.next_run += 1
        artifacts = self.workdir / "runs" / f"{self.next_run}-{workflow}" / "artifacts"
        artifacts.mkdir(parents=True)
        return WorkflowRun(workflow, event_name, ref, sha, self.next_run, artifacts, from_fork)

    def run_workflow(self, run: WorkflowRun, workflow_file: str | None = None, prefix: str = "") -> bool:
        """Every job of the workflow, in `needs` order (GitHub's), each once its needs have finished."""
        workflow_file = workflow_file or run.workflow
        doc = load_workflow(REPO / ".github" / "workflows" / workflow_file)
        jobs: dict[str, Any] = doc["jobs"]
        pending = list(jobs)
        while pending:
            ready = [j for j in pending if all(f"{prefix}{n}" in run.jobs for n in _needs(jobs[j]))]
            if not ready:
                raise RuntimeError(f"{workflow_file}: circular needs among {pending}")
            for job_id in ready:
                pending.remove(job_id)
                run.jobs[f"{prefix}{job_id}"] = self.run_job(run, doc, workflow_file, job_id, prefix)
        return all(r.result in {"success", "skipped"} for k, r in run.jobs.items() if k.startswith(prefix))

    def lookup(
        self,
        run: WorkflowRun,
        needs: dict[str, JobResult],
        steps: dict[str, Any],
        prefix: str = "",
        failed: bool = False,
        env: dict[str, str] | None = None,
    ) -> Callable[[str], Any]:
        def resolve(name: str) -> Any:
            if name == "cancelled()":
                return False
            if name in {"failure()", "success()", "always()"}:
                return {"failure()": failed, "success()": not failed, "always()": True}[name]
            parts = name.split(".")
            if parts[0] == "vars":
                return self.vars.get(parts[1], "")
            if parts[0] == "github":
                return {
                    "run_id": str(run.run_id),
                    "sha": run.sha,
                    "ref": run.ref,
                    "event_name": run.event_name,
                    "workflow": run.workflow,
                    "repository": THIS_REPOSITORY.full_name,
                    "token": GITHUB_TOKEN_STAND_IN,
                }[parts[1]]
            if parts[0] == "env" and env is not None:
                return env.get(parts[1], "")
            if parts[0] == "needs":
                result = needs[f"{prefix}{parts[1]}"]
                return result.result if parts[2] == "result" else result.outputs.get(parts[3], "")
            if parts[0] == "steps":
                step = steps.get(parts[1], {"outcome": "skipped", "outputs": {}})
                return step["outcome"] if parts[2] == "outcome" else step["outputs"].get(parts[3], "")
            raise KeyError(f"context {name} is not modelled")

        return resolve

    def run_job(self, run: WorkflowRun, doc: dict[str, Any], workflow_file: str, job_id: str, prefix: str) -> JobResult:
        job = doc["jobs"][job_id]
        label = f"{run.workflow}{' > ' + workflow_file if workflow_file != run.workflow else ''}/{job_id}"
        needs = {f"{prefix}{n}": run.jobs[f"{prefix}{n}"] for n in _needs(job)}
        condition = str(job.get("if", "")).strip()
        expression = condition[3:-2] if condition.startswith("${{") else condition
        all_ok = all(r.result == "success" for r in needs.values())
        status_function = any(f in expression for f in ("always()", "cancelled()", "failure()", "success()"))
        runs = (
            all_ok
            if not expression
            else (
                (status_function or all_ok)
                and bool(evaluate_expression(expression, self.lookup(run, needs, {}, prefix)))
            )
        )
        if not runs:
            progress(f"{label}: skipped (if: {expression or 'needs succeeded'})")
            return JobResult(label, "skipped")
        if "uses" in job:  # a reusable workflow of this repository
            callee = job["uses"].split("/")[-1]
            self.caps[f"{prefix}{job_id}/"] = dict(job.get("permissions") or {})
            progress(f"{label}: calls {callee}")
            ok = self.run_workflow(run, callee, prefix=f"{prefix}{job_id}/")
            return JobResult(label, "success" if ok else "failure")
        return self.run_steps(run, doc, job_id, job, needs, label, prefix)

    def job_env(
        self, run: WorkflowRun, doc: dict[str, Any], job: dict[str, Any], ws: Path, lookup: Callable[[str], Any]
    ) -> dict[str, str]:
        runner = ws.parent / "runner"
        runner.mkdir()
        for name in ("env", "output", "summary", "path"):
            (runner / name).touch()
        home = ws.parent / "home"
        home.mkdir()
        env = {
            "PATH": f"{self.stand_ins}:{os.environ['PATH']}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_SHA": run.sha,
            "GITHUB_REF": run.ref,
            "GITHUB_EVENT_NAME": run.event_name,
            "GITHUB_REPOSITORY": THIS_REPOSITORY.full_name,
            "GITHUB_RUN_ID": str(run.run_id),
            "GITHUB_WORKSPACE": str(ws),
            "GITHUB_ENV": str(runner / "env"),
            "GITHUB_OUTPUT": str(runner / "output"),
            "GITHUB_STEP_SUMMARY": str(runner / "summary"),
            "GITHUB_PATH": str(runner / "path"),
            "RUNNER_TEMP": str(runner),
            # The emulator wiring (not the job's): every AWS client here talks to moto.
            "AWS_ENDPOINT_URL": self.moto_url,
            # setup-python's stand-in shares this checkout's virtualenv, whose editable install names this checkout's
            # src/: the job's own src/ comes first, so it tests and runs the commit it checked out (as
            # scripts/prove_controls.py does for its scratch copies); without it the tests job measured two trees.
            "PYTHONPATH": str(ws / "src"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "CHECKPOINT_DISABLE": "1",
            **self.extra_env,
        }
        for key in ("PIP_CACHE_DIR", "XDG_CACHE_HOME", "TF_PROVIDER_MIRROR"):
            if key in os.environ:
                env[key] = os.environ[key]
        env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
        # The gate runs as on a laptop (no internet here: offline advisories, provider mirror); the jobs that reach
        # AWS run as on GitHub (GITHUB_ACTIONS=true).
        if job.get("__callee") != "ci.yml":
            env["GITHUB_ACTIONS"] = "true"
        for scope in (doc.get("env") or {}, job.get("env") or {}):
            for key, value in scope.items():
                env[key] = str(render(value, lookup))
        return env

    def run_steps(
        self,
        run: WorkflowRun,
        doc: dict[str, Any],
        job_id: str,
        job: dict[str, Any],
        needs: dict[str, JobResult],
        label: str,
        prefix: str,
    ) -> JobResult:
        # A path as plain as GitHub's (/home/runner/work/<repo>/<repo>): a called workflow's label ("deploy.yml >
        # ci.yml/emulate") has spaces and a ">", which make splits (iac-tfrc wrote to ".../deploy.yml" and "ci.yml...").
        jobdir = self.workdir / "runs" / f"{run.run_id}-{run.workflow}" / "jobs" / re.sub(r"[^\w.-]+", "__", label)
        ws = jobdir / "workspace"
        ws.mkdir(parents=True)
        steps_ctx: dict[str, Any] = {}
        result = JobResult(label, "success", workspace=ws)
        job = {**job, "__callee": "ci.yml" if doc.get("name") == "ci" else "", "__prefix": prefix}
        env = self.job_env(run, doc, job, ws, self.lookup(run, needs, steps_ctx, prefix))
        failed = False
        progress(
            f"{label}: started ({'environment ' + job['environment'] + ', ' if 'environment' in job else ''}"
            f"{len(job.get('steps') or [])} steps)"
        )
        for index, step in enumerate(job.get("steps") or [], 1):
            name = step.get("name") or step.get("run") or step.get("uses", "").split("@")[0]
            condition = str(step.get("if", "")).strip()
            expression = condition[3:-2] if condition.startswith("${{") else condition
            lookup = self.lookup(run, needs, steps_ctx, prefix, failed, env)
            if expression:
                status_function = any(f in expression for f in ("always()", "cancelled()", "failure()", "success()"))
                runs = (status_function or not failed) and bool(evaluate_expression(expression, lookup))
            else:
                runs = not failed
            if not runs:
                outcome = "skipped"
                steps_ctx[step.get("id", f"_{index}")] = {"outcome": outcome, "outputs": {}}
                result.steps.append((name, outcome))
                continue
            started = time.monotonic()
            try:
                outputs, note = self.run_step(run, job_id, job, step, env, ws, lookup, label, result)
                outcome = "success"
            except StepFailed as error:
                outputs, note, outcome = {}, str(error), "failure"
                failed = True
            steps_ctx[step.get("id", f"_{index}")] = {"outcome": outcome, "outputs": outputs}
            result.steps.append((name, outcome))
            progress(f"{label} [{index}] {name}: {outcome} ({time.monotonic() - started:.0f}s){note}")
        result.result = "failure" if failed else "success"
        for key, value in (job.get("outputs") or {}).items():
            result.outputs[key] = str(render(value, self.lookup(run, needs, steps_ctx, prefix)))
        return result

    def run_step(
        self,
        run: WorkflowRun,
        job_id: str,
        job: dict[str, Any],
        step: dict[str, Any],
        env: dict[str, str],
        ws: Path,
        lookup: Callable[[str], Any],
        label: str,
        result: JobResult,
    ) -> tuple[dict[str, str], str]:
        if "run" in step:
            script = str(step["run"])
            words = script.split("#", maxsplit=1)[0].split()
            reusable = self.gate_mode == "reuse" and job.get("__callee") == "ci.yml"
            if reusable and words[:1] == ["make"] and len(words) > 1 and words[1] in self.reused_targets:
                return {}, f" - reused: `make {words[1]}` passed earlier in this `make test`"
            output_file = Path(env["GITHUB_OUTPUT"])
            output_file.write_text("")
            step_env = {**env, **{k: str(render(v, lookup)) for k, v in (step.get("env") or {}).items()}}
            log = ws.parent / f"step-{len(result.steps) + 1}.log"
            shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]  # GitHub's `run:` shell
            with log.open("w") as out:
                proc = subprocess.run(shell, cwd=ws, env=step_env, stdout=out, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                tail = "\n".join(log.read_text().splitlines()[-40:])
                raise StepFailed(f" - exit {proc.returncode}, log {log}\n{tail}")
            self.absorb_env(env)
            return parse_outputs(output_file.read_text()), ""
        uses = str(step["uses"]).split("@")[0]
        with_ = {k: render(v, lookup) for k, v in (step.get("with") or {}).items()}
        if uses == "actions/checkout":
            sh("git", "clone", "--quiet", "--no-checkout", str(self.origin), str(ws / ".checkout"))
            (ws / ".checkout" / ".git").rename(ws / ".git")
            (ws / ".checkout").rmdir()
            sh("git", "-C", str(ws), "checkout", "--quiet", run.sha)
            if any(str(s.get("uses", "")).startswith("aws-actions/") for s in job.get("steps") or []):
                self.write_overrides(ws)  # only where Terraform will talk to "AWS"; scanners see the real code
                return {}, f" - stand-in: clone at {run.sha[:10]} (+ emulator *_override.tf)"
            return {}, f" - stand-in: clone at {run.sha[:10]}"
        if uses == "actions/setup-python":
            link_toolchain(ws)
            return {}, " - stand-in: the local toolchain (.venv, .venv-checkov of this checkout)"
        if uses == "hashicorp/setup-terraform":
            version = sh("terraform", "version", "-json")
            if not json.loads(version)["terraform_version"].startswith(
                str(with_["terraform_version"]).rsplit(".", 1)[0]
            ):
                raise StepFailed(f" - terraform {version} is not {with_['terraform_version']}")
            return {}, " - stand-in: the local terraform"
        if uses == "actions/upload-artifact":
            return {}, upload_artifact(run, ws, with_)
        if uses == "actions/download-artifact":
            return {}, download_artifact(run, ws, with_)
        if uses == "github/codeql-action/upload-sarif":
            return {}, " - stand-in: no code scanning here"
        if uses == "step-security/harden-runner":
            return {}, self.harden_runner(with_, env, result)
        if uses == "actions/attest-build-provenance":
            return {}, self.attest(run, job_id, job, with_, ws, result)
        if uses == "aws-actions/configure-aws-credentials":
            return {}, self.configure_credentials(run, job_id, job, with_, env, label, result)
        raise StepFailed(f" - no stand-in for {uses}")

    @staticmethod
    def harden_runner(with_: dict[str, Any], env: dict[str, str], result: JobResult) -> str:
        """The agent's input, checked as it would read it (entries split on spaces, after GitHub rendered the
        expressions); the list is recorded and handed to the `aws` stand-in. Egress itself is not blocked here."""
        if with_.get("egress-policy") != "block":
            raise StepFailed(f" - egress-policy is {with_.get('egress-policy')!r}, not block")
        entries = str(with_.get("allowed-endpoints") or "").split()
        if not entries:
            raise StepFailed(" - empty allow-list")
        bad = [e for e in entries if not RENDERED_ENTRY.match(e) or ".." in e or e.startswith(".")]
        bad += [e for e in entries if "*" in e and not ALLOWED_WILDCARD.match(e)]
        if bad:
            raise StepFailed(f" - allow-list entries that are not host:port (an unset variable?) or wildcards: {bad}")
        result.allowed_endpoints = entries
        env["REHEARSAL_ALLOWED_ENDPOINTS"] = " ".join(entries)
        return (
            f" - stand-in: block mode, {len(entries)} endpoints checked and recorded; egress NOT blocked here (no "
            "agent): the credentials step's STS and every `aws` CLI call are checked against the list"
        )

    def effective_permissions(self, job: dict[str, Any]) -> dict[str, str]:
        """The job's permissions, capped by those of the job that called its workflow (GitHub: a called workflow's
        jobs get at most the caller job's permissions)."""
        own = dict(job.get("permissions") or {})
        cap = self.caps.get(str(job.get("__prefix", "")))
        if cap is None:
            return own
        rank = {"none": 0, "read": 1, "write": 2}
        return {k: v for k, v in own.items() if rank.get(v, 0) <= rank.get(cap.get(k, "none"), 0)}

    @staticmethod
    def job_context(
        run: WorkflowRun,
        job_id: str,
        job: dict[str, Any],
        permissions: dict[str, str],
        extra: dict[str, str] | None = None,
    ) -> JobContext:
        """The job as GitHub sees it when it asks for an OIDC token (for AWS or for Sigstore)."""
        return JobContext(
            repository=THIS_REPOSITORY,
            workflow=run.workflow,
            job=job_id,
            event_name=run.event_name,
            ref=run.ref,
            id_token_write=permissions.get("id-token") == "write",
            environment=job.get("environment"),
            from_fork=run.from_fork,
            run_id=run.run_id,
            sha=run.sha,
            extra=extra or {},
        )

    def attest(
        self, run: WorkflowRun, job_id: str, job: dict[str, Any], with_: dict[str, Any], ws: Path, result: JobResult
    ) -> str:
        permissions = self.effective_permissions(job)
        if permissions.get("attestations") != "write":
            raise StepFailed(" - the action needs `attestations: write` (as capped by the calling job)")
        callee = "ci.yml" if job.get("__callee") == "ci.yml" else run.workflow
        context = self.job_context(
            run,
            job_id,
            job,
            permissions,
            extra={"job_workflow_ref": f"{THIS_REPOSITORY.full_name}/.github/workflows/{callee}@{run.ref}"},
        )
        try:
            claims = mint_claims(context)
        except NoToken as why:
            raise StepFailed(f' - missing "id-token" permission: {why}') from None
        files = [ws / line.strip() for line in str(with_["subject-path"]).splitlines() if line.strip()]
        missing = [str(f.relative_to(ws)) for f in files if not f.is_file()]
        if missing:
            raise StepFailed(f" - subjects not found: {missing}")
        attestations.record(self.attestation_store, files, claims)
        result.attested = [f.name for f in files]
        return (
            f" - stand-in: token sub {claims['sub']} (to Sigstore, not AWS), {len(files)} SLSA provenance statements "
            f"stored (signer {claims['job_workflow_ref']}); not signed: no Sigstore here"
        )

    @staticmethod
    def absorb_env(env: dict[str, str]) -> None:
        env_file = Path(env["GITHUB_ENV"])
        env.update(parse_outputs(env_file.read_text()))
        env_file.write_text("")

    def configure_credentials(
        self,
        run: WorkflowRun,
        job_id: str,
        job: dict[str, Any],
        with_: dict[str, Any],
        env: dict[str, str],
        label: str,
        result: JobResult,
    ) -> str:
        permissions = self.effective_permissions(job)
        sts = f"sts.{with_['aws-region']}.amazonaws.com:443"
        if result.allowed_endpoints and sts not in result.allowed_endpoints:
            raise StepFailed(f" - harden-runner would block {sts}: not in this job's allow-list")
        context = self.job_context(run, job_id, job, permissions)
        try:
            claims = mint_claims(context)
        except NoToken as why:
            raise StepFailed(f" - no OIDC token: {why}") from None
        role_arn = str(with_["role-to-assume"])
        trust = self.trust_policy(role_arn)
        if not may_assume(trust, self.provider_arn, claims):
            raise StepFailed(f" - AccessDenied: {role_arn} does not trust sub {claims['sub']}")
        creds = self.client("sts").assume_role_with_web_identity(
            RoleArn=role_arn, RoleSessionName=str(with_["role-session-name"]), WebIdentityToken=unsigned_jwt(claims)
        )["Credentials"]
        env.update(
            AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
            AWS_SESSION_TOKEN=creds["SessionToken"],
            AWS_REGION=str(with_["aws-region"]),
            AWS_DEFAULT_REGION=str(with_["aws-region"]),
        )
        purpose = next(p for p, arn in self.role_arns.items() if arn == role_arn)
        result.roles.append(purpose)
        self.assumed.append((label, purpose, claims["sub"]))
        return f" - stand-in: token sub {claims['sub']} admitted by the {purpose} role's applied trust"

    # -- emulator --------------------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # pragma: allowlist secret - moto's dummy credentials
        )

    @property
    def provider_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"

    def trust_policy(self, role_arn: str) -> dict[str, Any]:
        role = self.client("iam").get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
        document = role["AssumeRolePolicyDocument"]
        return json.loads(document) if isinstance(document, str) else dict(document)

    def write_overrides(self, ws: Path) -> None:
        envs = ws / "iac" / "envs"
        if not envs.is_dir():
            return
        endpoints = "\n".join(f'    {service:<14} = "{self.moto_url}"' for service in SERVICES)
        (envs / "emulator_override.tf").write_text(
            "# Written by the pipeline rehearsal into its checkout only: the provider and the backend -> moto.\n"
            'terraform {\n  backend "s3" {\n    use_path_style = true\n'
            f'    endpoints = {{\n      s3  = "{self.moto_url}"\n      sts = "{self.moto_url}"\n'
            f'      iam = "{self.moto_url}"\n    }}\n  }}\n}}\n\n'
            'provider "aws" {\n  s3_use_path_style = true\n\n  endpoints {\n' + endpoints + "\n  }\n}\n"
        )
        (ws / "iac" / "modules" / "functions" / "emulator_override.tf").write_text(FUNCTIONS_OVERRIDE)
        (ws / "iac" / "modules" / "pubsub" / "emulator_override.tf").write_text(PUBSUB_OVERRIDE)


class StepFailed(Exception):
    pass


def _needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs") or []
    return [value] if isinstance(value, str) else list(value)


def parse_outputs(text: str) -> dict[str, str]:
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            outputs[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs


def link_toolchain(ws: Path) -> None:
    """setup-python's stand-in: this checkout's virtualenvs, linked into the workspace, marked current."""
    for venv in (".venv", ".venv-checkov"):
        source = REPO / venv
        if not (source / "pyvenv.cfg").is_file():
            continue
        target = ws / venv
        target.mkdir()
        for item in source.iterdir():
            if item.name != ".installed":
                (target / item.name).symlink_to(item)
        (target / ".installed").touch()


def _files(ws: Path, patterns: list[str]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        path = ws / pattern.rstrip("/")
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found.append(path)
    return found


def upload_artifact(run: WorkflowRun, ws: Path, with_: dict[str, Any]) -> str:
    patterns = [line.strip() for line in str(with_["path"]).splitlines() if line.strip()]
    files = _files(ws, patterns)
    if not files:
        raise StepFailed(f" - no files found for {patterns}")
    root = Path(os.path.commonpath([p.parent for p in files]))
    destination = run.artifacts / str(with_.get("name", "artifact"))
    if destination.exists():
        raise StepFailed(f" - artifact {destination.name} already exists in this run")
    for path in files:
        target = destination / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return f" - stand-in: {len(files)} files -> artifact {destination.name}"


def download_artifact(run: WorkflowRun, ws: Path, with_: dict[str, Any]) -> str:
    source = run.artifacts / str(with_["name"])
    if not source.is_dir():
        raise StepFailed(f" - artifact {source.name} not found in this run")
    target = ws / str(with_.get("path", "."))
    shutil.copytree(source, target, dirs_exist_ok=True)
    return f" - stand-in: artifact {source.name} -> {with_.get('path', '.')}"
