"""Runners that cannot phone home (issue 13 item 4): step-security/harden-runner is the first step of every job in
every workflow, in block mode, with an explicit allow-list of host:port entries; no entry holds a wildcard outside
the reasoned exceptions below; AWS is reached by service name in the stack's region, never *.amazonaws.com; and
the lists name what the jobs provably call (the role's STS, Sigstore for the attestation, every AWS service the
stack is made of for the apply)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.gates.workflow_model import AWS_CREDENTIALS, WORKFLOWS, all_workflows, attests_only, steps
from tests.iac.emulator import SERVICES

HARDEN_RUNNER = "step-security/harden-runner"
REGION = "${{ vars.AWS_REGION }}"
# A host label may be an expression (a repository variable or the workflow's env): the value is set per stack.
LABEL = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?|\$\{\{ (?:vars|env)\.[A-Z_]+ \}\})"
# A whole host from a repository variable only for a variable named *_HOST (the API's invoke host); its value is
# checked where it is known, by the rehearsal's harden-runner stand-in (no wildcard, host:port).
ENTRY = re.compile(rf"^(?P<host>{LABEL}(?:\.{LABEL})+|\$\{{\{{ vars\.[A-Z_]+_HOST \}}\}}):443$")
# The only wildcards, each with its reason. (harden-runner itself allows the runner's own services, e.g.
# *.actions.githubusercontent.com and the artifact storage accounts: those are not in any list here.)
WILDCARD_EXCEPTIONS = {
    ("deploy.yml", "apply", f"rampart-${{{{ env.TF_ENV }}}}-lambda-artifacts-*.s3.{REGION}.amazonaws.com:443"): (
        "the stack names its artifact and access-log buckets with bucket_prefix '<name>-lambda-artifacts-' and a "
        "random suffix (a replaced bucket gets a new one), and S3 is reached by bucket name: the prefix wildcard is "
        "the apply role's own IAM scope for those buckets, no wider"
    ),
}
# The AWS hosts an entry may name: a service in the stack's region, IAM (global), a bucket in the region, and the
# RDS CA bundle's download host.
AWS_HOST = re.compile(
    rf"^(?:[a-z0-9]+\.{re.escape(REGION)}|iam|truststore\.pki\.rds"
    rf"|\$\{{\{{ vars\.[A-Z_]+ \}}\}}\.s3\.{re.escape(REGION)})\.amazonaws\.com$"
)
# Provider endpoint name -> the service's host name where they differ (CloudWatch's API is "monitoring").
SERVICE_HOSTS = {"cloudwatch": "monitoring"}


def jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (name, job_id, job)
        for name, doc in all_workflows().items()
        for job_id, job in doc["jobs"].items()
        if "steps" in job  # a reusable-workflow call has no runner: its callee's jobs are listed themselves
    ]


def entries_of(text: str) -> list[str]:
    """The allow-list's entries: whitespace-separated (as harden-runner splits them once GitHub has evaluated the
    expressions), an expression `${{ ... }}` being part of its entry."""
    return re.findall(r"(?:\$\{\{.*?\}\}|\S)+", text)


def allow_list(job: dict[str, Any]) -> list[str]:
    return entries_of(str(steps(job)[0]["with"]["allowed-endpoints"]))


def egress_problems(name: str, job_id: str, job: dict[str, Any]) -> list[str]:
    """Why this job's runner could phone home (an empty list: it cannot, beyond its allow-list)."""
    first = steps(job)[0] if steps(job) else {}
    if str(first.get("uses", "")).split("@")[0] != HARDEN_RUNNER:
        return [f"{name} {job_id}: the first step is not {HARDEN_RUNNER}"]
    problems = []
    if sum(str(s.get("uses", "")).startswith(HARDEN_RUNNER + "@") for s in steps(job)) != 1:
        problems.append(f"{name} {job_id}: harden-runner more than once")
    settings = first.get("with") or {}
    if settings.get("egress-policy") != "block":
        problems.append(f"{name} {job_id}: egress-policy is {settings.get('egress-policy')!r}, not block")
    if settings.get("disable-telemetry") is not True:
        problems.append(f"{name} {job_id}: the DNS log goes to StepSecurity (disable-telemetry is not true)")
    entries = entries_of(str(settings.get("allowed-endpoints") or ""))
    if not entries:
        problems.append(f"{name} {job_id}: empty allow-list (block mode would allow only the implicit endpoints)")
    if len(entries) != len(set(entries)):
        problems.append(f"{name} {job_id}: an entry is listed twice")
    for entry in entries:
        if "*" in entry:
            if (name, job_id, entry) not in WILDCARD_EXCEPTIONS:
                problems.append(f"{name} {job_id}: wildcard {entry} is not a reasoned exception")
            continue
        match = ENTRY.match(entry)
        if not match:
            problems.append(f"{name} {job_id}: {entry!r} is not host:443")
        elif match["host"].endswith(".amazonaws.com") and not AWS_HOST.match(match["host"]):
            problems.append(f"{name} {job_id}: {entry} is not a named service in the stack's region")
    return problems


@pytest.mark.parametrize(("name", "job_id"), [(n, j) for n, j, _ in jobs()])
def test_every_job_starts_by_blocking_egress_to_all_but_its_allow_list(name: str, job_id: str) -> None:
    job = all_workflows()[name]["jobs"][job_id]
    assert egress_problems(name, job_id, job) == []


def test_every_workflow_and_every_job_is_covered() -> None:
    covered = {(n, j) for n, j, _ in jobs()}
    assert {n for n, _ in covered} == {p.name for p in WORKFLOWS.glob("*.yml")}
    assert ("ci.yml", "provenance") in covered and ("deploy.yml", "deploy") in covered


def test_every_wildcard_exception_is_in_use() -> None:
    used = {(n, j, e) for n, j, job in jobs() for e in allow_list(job) if "*" in e}
    assert used == set(WILDCARD_EXCEPTIONS)


MUTATIONS = {
    "no harden-runner": lambda job: job["steps"].pop(0),
    "harden-runner second": lambda job: job["steps"].insert(0, job["steps"].pop(1)),
    "audit mode": lambda job: job["steps"][0]["with"].update({"egress-policy": "audit"}),
    "telemetry on": lambda job: job["steps"][0]["with"].pop("disable-telemetry"),
    "empty allow-list": lambda job: job["steps"][0]["with"].update({"allowed-endpoints": ""}),
    "all of AWS": lambda job: job["steps"][0]["with"].update({"allowed-endpoints": "*.amazonaws.com:443"}),
    "a service outside the region": lambda job: job["steps"][0]["with"].update(
        {"allowed-endpoints": "sts.amazonaws.com:443"}
    ),
    "any bucket": lambda job: job["steps"][0]["with"].update({"allowed-endpoints": f"*.s3.{REGION}.amazonaws.com:443"}),
    "a host without a port": lambda job: job["steps"][0]["with"].update({"allowed-endpoints": "pypi.org"}),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_check_catches_a_weakened_runner(mutation: str) -> None:
    job = copy.deepcopy(all_workflows()["deploy.yml"]["jobs"]["deploy"])
    MUTATIONS[mutation](job)
    assert egress_problems("deploy.yml", "deploy", job) != []


def test_a_job_that_assumes_a_role_reaches_sts_in_the_region_it_assumes_it_in() -> None:
    for name, job_id, job in jobs():
        creds = [s for s in steps(job) if str(s.get("uses", "")).startswith(AWS_CREDENTIALS + "@")]
        for step in creds:
            region = step["with"]["aws-region"]
            assert region == REGION, f"{name} {job_id}"
            assert f"sts.{region}.amazonaws.com:443" in allow_list(job), f"{name} {job_id}"


def test_the_attesting_job_reaches_sigstore_and_nothing_of_aws() -> None:
    attesting = [(n, j, job) for n, j, job in jobs() if attests_only(job)]
    assert [(n, j) for n, j, _ in attesting] == [("ci.yml", "provenance")]
    entries = allow_list(attesting[0][2])
    assert entries == ["api.github.com:443", "fulcio.sigstore.dev:443", "rekor.sigstore.dev:443"]


def test_the_deploy_job_reaches_the_trust_roots_gh_verifies_with() -> None:
    deploy = all_workflows()["deploy.yml"]["jobs"]["deploy"]
    entries = allow_list(deploy)
    assert {"api.github.com:443", "tuf-repo-cdn.sigstore.dev:443", "tuf-repo.github.com:443"} <= set(entries)
    assert {e for e in entries if "sigstore" in e or "fulcio" in e or "rekor" in e} == {"tuf-repo-cdn.sigstore.dev:443"}


def test_the_apply_job_reaches_every_service_the_stack_is_made_of() -> None:
    """The services the emulator has to stand in for (tests/iac/emulator.py) are the ones the AWS provider calls."""
    apply = set(allow_list(all_workflows()["deploy.yml"]["jobs"]["apply"]))
    for service in SERVICES:
        host = (
            "iam.amazonaws.com" if service == "iam" else f"{SERVICE_HOSTS.get(service, service)}.{REGION}.amazonaws.com"
        )
        assert f"{host}:443" in apply, service
