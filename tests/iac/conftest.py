"""Session fixtures for the emulator proofs (`make iac-emulate`): one moto server and one apply of the dev root
shared by every `emulate`-marked test module under tests/iac (see tests/iac/emulator.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.iac.emulator import (
    FUNCTIONS_OVERRIDE,
    IAC,
    PROVIDER_OVERRIDE,
    PUBSUB_OVERRIDE,
    REPO,
    SERVICES,
    STATE_DUMP,
    TFVARS,
    client,
    count_resources,
    create_permissions_boundary,
    free_port,
    package_zips,
    progress,
    terraform,
    terraform_env,
)


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")  # AWS managed policies to attach
    server = subprocess.Popen(  # moto_server + PutCompositeAlarm (tests/iac/moto_server.py)
        [sys.executable, "-m", "tests.iac.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
                with urllib.request.urlopen(request, timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.2)
        progress(f"moto_server up and reset on {url} (pid {server.pid})")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def stack(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("iac-emulate")
    copy = workdir / "iac"
    shutil.copytree(IAC, copy, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    root = copy / "envs"
    endpoints = "\n".join(f'    {service:<14} = "{moto_url}"' for service in SERVICES)
    (root / "emulator_override.tf").write_text(
        PROVIDER_OVERRIDE.format(state=workdir / "terraform.tfstate", endpoints=endpoints)
    )
    (copy / "modules" / "functions" / "emulator_override.tf").write_text(FUNCTIONS_OVERRIDE)
    (copy / "modules" / "pubsub" / "emulator_override.tf").write_text(PUBSUB_OVERRIDE)
    ingest_zip, api_zip = package_zips(workdir)
    env = terraform_env(workdir)
    variables = ["-var-file", TFVARS, "-var", f"ingest_zip_path={ingest_zip}", "-var", f"api_zip_path={api_zip}"]

    boundary_arn = create_permissions_boundary(moto_url)
    progress(f"terraform init (provider mirror via {env['TF_CLI_CONFIG_FILE']})")
    terraform(root, env, "init", "-input=false", log=workdir / "init.log")
    applied = False
    try:
        progress("terraform apply of the dev root against moto (the database alone takes ~2 min here)")
        terraform(root, env, "apply", "-input=false", "-auto-approve", *variables, log=workdir / "apply.log")
        applied = True
        outputs = json.loads(terraform(root, env, "output", "-json", log=workdir / "output.log"))
        state = json.loads(terraform(root, env, "show", "-json", log=workdir / "show.log"))
        STATE_DUMP.parent.mkdir(parents=True, exist_ok=True)
        STATE_DUMP.write_text(json.dumps(state, indent=1, sort_keys=True))  # for policy linters (make iam-lint)
        resources = count_resources(state["values"]["root_module"])
        progress(f"applied {resources} resources")
        yield {
            "outputs": {k: v["value"] for k, v in outputs.items()},
            "resources": resources,
            "workdir": workdir,
            "boundary_arn": boundary_arn,
            "state": state,
        }
    finally:
        if applied:
            rds = client("rds", moto_url)
            for db in rds.describe_db_instances()["DBInstances"]:
                rds.modify_db_instance(
                    DBInstanceIdentifier=db["DBInstanceIdentifier"], DeletionProtection=False, ApplyImmediately=True
                )
        progress("terraform destroy")
        terraform(root, env, "destroy", "-input=false", "-auto-approve", *variables, log=workdir / "destroy.log")
        remaining = json.loads(terraform(root, env, "show", "-json", log=workdir / "show-after.log"))
        assert not remaining.get("values"), "resources left in state after destroy"
