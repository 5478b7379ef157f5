"""The pipeline rehearsal as one session fixture (`make pipeline-rehearsal`): bootstrap the emulated account as
docs/terraform.md says, then a pull request (ci.yml + terraform.yml) and its merge (deploy.yml), in GitHub's
order; then the trust matrix. tests/pipeline/test_rehearsal.py asserts on what happened."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.iac.emulator import free_port
from tests.pipeline import stand_ins
from tests.pipeline.rehearsal import (
    ACCOUNT,
    REGION,
    REPO,
    STACK,
    Rehearsal,
    link_toolchain,
    load_workflow,
    progress,
    sh,
)
from tests.pipeline.trust_matrix import trust_matrix

BOUNDARY_NAME = f"{STACK}-permissions-boundary"
APPLY_ROLE = "rampart-terraform-apply-prod"
POLICY_BLOCK = re.compile(r"<!-- policy: ([a-z-]+) \(([^)]+)\) -->\n```json\n(.*?)```", re.DOTALL)
STATE_BUCKET = "rampart-rehearsal-terraform-state"
# The repository variable ALARM_SUBSCRIBERS (docs/terraform.md step 5): the root has no default and refuses none.
ALARM_SUBSCRIBERS = '[{"protocol": "email", "endpoint": "rampart-oncall@example.com"}]'


def start_moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(  # moto_server + PutCompositeAlarm (the burn-rate alarms; tests/iac/moto_server.py)
        [str(REPO / ".venv" / "bin" / "python"), "-m", "tests.iac.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env=dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true"),
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=2):
                return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start on {url}") from None
            time.sleep(0.2)


def docs_policy(kind: str, substitutions: dict[str, str]) -> str:
    for found, _name, body in POLICY_BLOCK.findall((REPO / "docs" / "terraform.md").read_text()):
        if found == kind:
            text = body
            for placeholder, value in substitutions.items():
                text = text.replace(placeholder, value)
            return json.dumps(json.loads(text))
    raise AssertionError(f"docs/terraform.md has no {kind} policy")


def bootstrap_account(r: Rehearsal) -> dict[str, str]:
    """Steps 1-4 of the bootstrap in docs/terraform.md, with the documents it shows, verbatim."""
    s3, kms, iam = r.client("s3"), r.client("kms"), r.client("iam")
    s3.create_bucket(Bucket=STATE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    state_key = kms.create_key(Description="terraform state")["KeyMetadata"]["Arn"]
    iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com"]
    )
    substitutions = {
        "<ACCOUNT_ID>": ACCOUNT,
        "<REGION>": REGION,
        "<GITHUB_REPOSITORY>": "rampart-project/rampart",
        "<STATE_BUCKET>": STATE_BUCKET,
        "<STATE_KMS_KEY_ARN>": state_key,
    }
    iam.create_policy(PolicyName=BOUNDARY_NAME, PolicyDocument=docs_policy("permissions-boundary", substitutions))
    role = iam.create_role(RoleName=APPLY_ROLE, AssumeRolePolicyDocument=docs_policy("apply-trust", substitutions))
    policy = iam.create_policy(PolicyName=APPLY_ROLE, PolicyDocument=docs_policy("apply-permissions", substitutions))
    iam.attach_role_policy(RoleName=APPLY_ROLE, PolicyArn=policy["Policy"]["Arn"])
    progress("bootstrap: state bucket + CMK, OIDC provider, boundary, apply role (docs/terraform.md, verbatim)")
    return {"state_key": state_key, "apply_role_arn": role["Role"]["Arn"]}


def first_apply(r: Rehearsal, sha: str) -> dict[str, Any]:
    """Step 6: the first apply, with administrator credentials, through the same make targets."""
    ws = r.workdir / "bootstrap-apply"
    sh("git", "clone", "--quiet", str(r.origin), str(ws))
    sh("git", "-C", str(ws), "checkout", "--quiet", sha)
    r.write_overrides(ws)
    link_toolchain(ws)
    env = {
        "PATH": f"{r.stand_ins}:{os.environ['PATH']}",
        "HOME": str(r.workdir / "bootstrap-home"),
        "GITHUB_SHA": sha,
        "AWS_ENDPOINT_URL": r.moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret - moto's dummy credentials
        "AWS_REGION": REGION,
        "TF_STATE_BUCKET": STATE_BUCKET,
        "TF_ENV": "prod",
        "TF_VAR_alarm_subscribers": ALARM_SUBSCRIBERS,
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
        **r.extra_env,
    }
    Path(env["HOME"]).mkdir()
    for target in ("package", "terraform-plan", "terraform-apply"):
        started = time.monotonic()
        log = r.workdir / f"bootstrap-{target}.log"
        proc = subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=ws,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"bootstrap make {target} failed:\n" + "\n".join(log.read_text().splitlines()[-40:]))
        progress(f"bootstrap: make {target} ok ({time.monotonic() - started:.0f}s, administrator credentials)")
    outputs = json.loads(sh("terraform", "-chdir=iac/envs", "output", "-json", cwd=ws, env={**os.environ, **env}))
    return {k: v["value"] for k, v in outputs.items()}


def issue_smoke_test_key(r: Rehearsal, usage_plan_id: str) -> None:
    """What `rampart keys create --client smoke-test` does (conventions.md), done here with boto3."""
    apigw, sm = r.client("apigateway"), r.client("secretsmanager")
    key = apigw.create_api_key(
        name=f"{STACK}-smoke-test-1", enabled=True, tags={"rampart:stack": STACK, "rampart:client": "smoke-test"}
    )
    apigw.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key["id"], keyType="API_KEY")
    document = {
        "client": "smoke-test",
        "tier": "standard",
        "current": {"id": key["id"], "value": key["value"], "created_at": "2026-12-01T00:00:00Z"},
        "previous": None,
        "previous_expires_at": None,
    }
    sm.create_secret(
        Name=f"{STACK}/api-keys/smoke-test", KmsKeyId=f"alias/{STACK}-api-keys", SecretString=json.dumps(document)
    )
    progress("bootstrap: smoke-test client key issued (as `rampart keys create --client smoke-test` would)")


def valid_keys(r: Rehearsal) -> set[str]:
    apigw = r.client("apigateway")
    keys = set()
    for plan in apigw.get_usage_plans()["items"]:
        for entry in apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]:
            key = apigw.get_api_key(apiKey=entry["id"], includeValue=True)
            if key["enabled"]:
                keys.add(key["value"])
    return keys


def set_tfvar(name: str, value: str) -> Any:
    def edit(ws: Path) -> None:
        path = ws / "iac" / "envs" / "prod.tfvars"
        path.write_text(path.read_text().rstrip("\n") + f"\n{name} = {value}\n")
        # As the pre-commit hook would before the commit: `make iac-validate` (terraform fmt -check) gates the change.
        sh("terraform", "fmt", str(path))

    return edit


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("rehearsal")
    server, moto_url = start_moto(workdir / "moto.log")
    progress(f"moto_server up on {moto_url}")
    gate_mode = os.environ.get("REHEARSAL_GATE", "run")
    reused = set(os.environ.get("REHEARSAL_REUSED_TARGETS", "").split())
    r = Rehearsal(workdir, moto_url, gate_mode, reused)
    venv = REPO / ".venv" / "bin"
    stand_ins.install(r.stand_ins, python=str(venv / "python"), real_aws=str(venv / "aws"))
    r.extra_env["REHEARSAL_SIGNER_JOBS"] = str(workdir / "signer-jobs.json")
    r.extra_env["ATTESTATION_STORE"] = str(r.attestation_store)  # GitHub's attestations API, stood in for
    advisories = (REPO / ".." / "shared" / "advisory-db" / "vulns").resolve()
    if advisories.is_dir():  # `make audit` in a gate job: the offline snapshot beside this checkout
        r.extra_env["ADVISORY_DB"] = str(advisories)
    try:
        r.make_origin()
        boot = bootstrap_account(r)

        def state_access(ws: Path) -> None:
            set_tfvar("state_bucket_name", f'"{STATE_BUCKET}"')(ws)
            set_tfvar("state_kms_key_arn", f'"{boot["state_key"]}"')(ws)

        main = r.commit("main", "bootstrap: the plan role may read the state (docs/terraform.md step 6)", state_access)
        outputs = first_apply(r, main)
        issue_smoke_test_key(r, outputs["api_usage_plan_ids"]["standard"])
        with stand_ins.ApiStandIn(lambda: valid_keys(r)) as api:
            r.vars = {
                "AWS_REGION": REGION,
                "TF_STATE_BUCKET": STATE_BUCKET,
                "ALARM_SUBSCRIBERS": ALARM_SUBSCRIBERS,
                "AWS_PLAN_ROLE_ARN": outputs["github_plan_role_arn"],
                "AWS_APPLY_ROLE_ARN": boot["apply_role_arn"],
                "AWS_DEPLOY_ROLE_ARN": outputs["github_deploy_role_arn"],
                "RAMPART_ARTIFACT_BUCKET": outputs["artifact_bucket_name"],
                "RAMPART_SIGNING_PROFILE": outputs["signing_profile_name"],
                "RAMPART_INGEST_FUNCTION": outputs["ingest_function_name"],
                "RAMPART_API_FUNCTION": outputs["api_function_name"],
                "RAMPART_API_URL": api.url,  # stand-in: moto's API Gateway cannot invoke the Lambda
                "RAMPART_API_HOST": "127.0.0.1",  # the stand-in's host (harden-runner's list names it)
                "RAMPART_API_KEY_SECRET_ID": f"{STACK}/api-keys/smoke-test",
            }
            r.role_arns = {
                "plan": r.vars["AWS_PLAN_ROLE_ARN"],
                "apply": r.vars["AWS_APPLY_ROLE_ARN"],
                "deploy": r.vars["AWS_DEPLOY_ROLE_ARN"],
            }
            lam = r.client("lambda")
            before = {
                fn: lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"]
                for fn in (outputs["ingest_function_name"], outputs["api_function_name"])
            }

            # A pull request that changes the infrastructure: ci.yml and terraform.yml run on its merge ref.
            head = r.commit(
                "feature", "WAF: a lower per-IP rate limit", set_tfvar("waf_rate_limit_per_5_minutes", "1500")
            )
            merge = r.merge_ref("feature", 1)
            progress(f"pull request #1: head {head[:10]}, merge ref {merge[:10]}")
            pr_gate = r.new_run("ci.yml", "pull_request", "refs/pull/1/merge", merge)
            r.run_workflow(pr_gate)
            pr_plan = r.new_run("terraform.yml", "pull_request", "refs/pull/1/merge", merge)
            r.run_workflow(pr_plan)

            # Merged: main moves to the merge commit; deploy.yml runs gate -> plan -> apply -> deploy.
            r.set_main(merge)
            push = r.new_run("deploy.yml", "push", "refs/heads/main", merge)
            r.run_workflow(push)

            # The same sealed plan once more, after the state moved: the apply job must refuse it.
            rerun = r.new_run("deploy.yml", "push", "refs/heads/main", merge)
            for name in ("lambda-zips", "terraform-plan"):
                src = push.artifacts / name
                if src.is_dir():
                    sh("cp", "-r", str(src), str(rerun.artifacts / name))
            doc = load_workflow(REPO / ".github" / "workflows" / "deploy.yml")
            rerun.jobs.update({k: v for k, v in push.jobs.items() if k in {"gate", "plan"}})
            stale = r.run_job(rerun, doc, "deploy.yml", "apply", "")

            trusts = {purpose: r.trust_policy(arn) for purpose, arn in r.role_arns.items()}
            matrix = trust_matrix(trusts, r.provider_arn)
            yield {
                "rehearsal": r,
                "attestations": r.attestation_store,
                "outputs": outputs,
                "alias_before": before,
                "runs": {"pr_gate": pr_gate, "pr_plan": pr_plan, "push": push},
                "stale_apply": stale,
                "merge": merge,
                "matrix": matrix,
                "trusts": trusts,
            }
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
