"""Alarms must reach someone: production refuses to plan without a subscriber, and the monitoring module refuses
none, plain http, or an endpoint that does not fit its protocol (its terraform test also checks the dashboard's
rows). Terraform itself decides, with no AWS call: the root fails before any provider work, the module runs under
`terraform test` with a mocked provider."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.iac.emulator import IAC, TERRAFORM, terraform_env

BACKEND_OVERRIDE = 'terraform {\n  backend "local" {}\n}\n'


def _terraform(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TERRAFORM, *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    if shutil.which(TERRAFORM) is None:
        pytest.fail("terraform is not installed (make iac-validate needs it too)")
    workdir = tmp_path_factory.mktemp("alarm-subscribers")
    shutil.copytree(IAC, workdir / "iac", ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    env = terraform_env(workdir)
    for key in [k for k in env if k.startswith("TF_VAR_")]:
        del env[key]
    return workdir / "iac", env


def test_the_module_refuses_alarms_that_reach_no_one(copy: tuple[Path, dict[str, str]]) -> None:
    iac, env = copy
    module = iac / "modules" / "monitoring"
    assert (module / "tests" / "subscribers.tftest.hcl").is_file()
    init = _terraform(module, env, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stdout + init.stderr
    tested = _terraform(module, env, "test")
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output
    runs = (
        "every_allowed_kind_of_subscriber",
        "no_subscriber",
        "plain_http",
        "endpoint_not_fitting_its_protocol",
        "dashboard_rows_are_metric_arrays",
    )
    for run in runs:
        assert re.search(rf'run "{run}"\.\.\. pass', output), output
    assert f"{len(runs)} passed, 0 failed" in output


def test_production_refuses_to_plan_without_a_subscriber(copy: tuple[Path, dict[str, str]]) -> None:
    iac, env = copy
    root = iac / "envs"
    (root / "backend_override.tf").write_text(BACKEND_OVERRIDE)
    init = _terraform(root, env, "init", "-input=false")
    assert init.returncode == 0, init.stdout + init.stderr

    unset = _terraform(root, env, "plan", "-input=false", "-var-file=prod.tfvars")
    assert unset.returncode != 0
    assert "No value for required variable" in unset.stderr and '"alarm_subscribers"' in unset.stderr

    empty = _terraform(root, env, "plan", "-input=false", "-var-file=prod.tfvars", "-var", "alarm_subscribers=[]")
    assert empty.returncode != 0
    # The root's own refusal, before any module is evaluated (the monitoring module would refuse it too).
    assert "production alarms must reach someone" in " ".join(empty.stderr.split())


def test_prod_takes_its_subscribers_from_the_workflow_and_dev_names_an_example() -> None:
    prod = (IAC / "envs" / "prod.tfvars").read_text()
    dev = (IAC / "envs" / "dev.tfvars").read_text()
    assert not re.search(r"^alarm_subscribers\s*=", prod, re.MULTILINE)
    example = r'^alarm_subscribers\s*=\s*\[\{ protocol = "email", endpoint = "[^"]+@example\.com" \}\]'
    assert re.search(example, dev, re.MULTILINE)
    # Every job that plans production (the pull request's plan, the plan of main) names the subscribers.
    for name in ("terraform.yml", "deploy.yml"):
        workflow = yaml.safe_load((IAC.parent / ".github" / "workflows" / name).read_text())
        plan = workflow["jobs"]["plan"]
        env = {**workflow.get("env", {}), **plan.get("env", {})}
        assert env.get("TF_VAR_alarm_subscribers") == "${{ vars.ALARM_SUBSCRIBERS }}", name
    assert "`ALARM_SUBSCRIBERS`" in (IAC.parent / "docs" / "terraform.md").read_text()
