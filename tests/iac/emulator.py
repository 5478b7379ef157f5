"""The emulator harness: apply the real dev root (iac/envs + dev.tfvars) against moto, then destroy it.

Run by `make iac-emulate` (pytest -m emulate tests/iac); the default pytest run deselects it.

The Terraform code is applied unchanged. Only *_override.tf files written into a temporary copy
point the provider at the emulator and leave out what moto cannot model:
  - iac/envs: local state in the temp dir, static test credentials, every endpoint -> moto.
  - modules/functions: AWS Signer signing jobs and the Lambda code-signing config (moto implements
    neither StartSigningJob nor CreateCodeSigningConfig), so the functions deploy the unsigned
    package from the artifact bucket; the artifact bucket policy (moto evaluates its
    aws:SecureTransport deny as a plain deny, so every upload would be refused).
  - modules/pubsub: the DLQ's redrive-allow policy (moto neither stores nor returns it, and the
    provider waits for it to appear).
Before the apply, the permissions boundary policy is created in the emulator from docs/terraform.md, as the
bootstrap does in an account (dev.tfvars names it; every role of the stack must carry it).
Not exercised: a message flowing topic -> queue -> Lambda (moto's event source mapping invokes the
function, which needs Docker), Performance Insights and Lambda DeadLetterConfig (moto does not
report them; checkov checks them statically). Deletion protection of the database stays on; the
test turns it off through the API before `terraform destroy`, as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[2]
STATE_DUMP = REPO / "build" / "terraform" / "emulated-state.json"
IAC = REPO / "iac"
VENV_BIN = Path(sys.executable).parent
TFVARS = "dev.tfvars"
TERRAFORM = shutil.which("terraform") or "terraform"
START = time.monotonic()


def progress(message: str) -> None:
    print(f"==> [iac-emulate +{time.monotonic() - START:5.0f}s] {message}", flush=True)


def tfvar(name: str) -> str:
    match = re.search(rf'^{name}\s*=\s*"([^"]+)"', (IAC / "envs" / TFVARS).read_text(), re.MULTILINE)
    assert match, f"{name} missing from {TFVARS}"
    return match.group(1)


REGION = tfvar("region")
REPOSITORY = tfvar("github_repository")
ENVIRONMENT = tfvar("environment")
BOUNDARY_POLICY = tfvar("iam_permissions_boundary_policy_name")
BOUNDARY_DOC = re.compile(r"<!-- policy: permissions-boundary \([^)]*\) -->\n```json\n(.*?)```", re.DOTALL)


def create_permissions_boundary(moto_url: str) -> str:
    """What the bootstrap (docs/terraform.md) does before the first apply: the boundary policy, verbatim."""
    match = BOUNDARY_DOC.search((REPO / "docs" / "terraform.md").read_text())
    assert match, "docs/terraform.md has no permissions-boundary policy"
    document = json.dumps(json.loads(match.group(1)))
    policy = client("iam", moto_url).create_policy(PolicyName=BOUNDARY_POLICY, PolicyDocument=document)
    return str(policy["Policy"]["Arn"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client(service: str, moto_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # pragma: allowlist secret - moto's dummy credentials
    )


PROVIDER_OVERRIDE = """\
# Written by tests/iac/test_emulate.py into a temporary copy only.
terraform {{
  backend "local" {{
    path = "{state}"
  }}
}}

provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing" # pragma: allowlist secret
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""
SERVICES = (
    "apigateway",
    "cloudwatch",
    "ec2",
    "iam",
    "kms",
    "lambda",
    "logs",
    "rds",
    "s3",
    "secretsmanager",
    "signer",
    "sns",
    "sqs",
    "sts",
    "wafv2",
)

FUNCTIONS_OVERRIDE = """\
# Written by tests/iac/test_emulate.py: moto has no StartSigningJob and no CreateCodeSigningConfig,
# and evaluates the bucket's aws:SecureTransport deny as an unconditional deny.
resource "aws_signer_signing_job" "this" {
  for_each = {}
}

resource "aws_lambda_code_signing_config" "this" {
  count = 0
}

resource "aws_s3_bucket_policy" "artifacts" {
  count = 0
}

resource "aws_lambda_function" "ingest" {
  s3_bucket               = aws_s3_object.unsigned["ingest"].bucket
  s3_key                  = aws_s3_object.unsigned["ingest"].key
  code_signing_config_arn = null
}

resource "aws_lambda_function" "api" {
  s3_bucket               = aws_s3_object.unsigned["api"].bucket
  s3_key                  = aws_s3_object.unsigned["api"].key
  code_signing_config_arn = null
}

output "code_signing_config_arn" {
  value = null
}
"""

PUBSUB_OVERRIDE = """\
# Written by tests/iac/test_emulate.py: moto does not store RedriveAllowPolicy.
resource "aws_sqs_queue" "dlq" {
  redrive_allow_policy = null
}
"""


def terraform_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    rc = env.get("TF_CLI_CONFIG_FILE", "")
    if not rc or not Path(rc).is_file():
        rc = str(workdir / "terraformrc")
        subprocess.run([str(IAC / "tools" / "terraformrc.sh"), rc], check=True, capture_output=True)
    env.update(
        TF_CLI_CONFIG_FILE=rc,
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # pragma: allowlist secret
        AWS_REGION=REGION,
        CHECKPOINT_DISABLE="1",
    )
    return env


def terraform(root: Path, env: dict[str, str], *args: str, log: Path) -> str:
    started = time.monotonic()
    result = subprocess.run(
        [TERRAFORM, f"-chdir={root}", *args, "-no-color"], env=env, capture_output=True, text=True, check=False
    )
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
        raise AssertionError(f"terraform {args[0]} failed ({result.returncode}); log {log}\n{tail}")
    progress(f"terraform {args[0]} ok in {time.monotonic() - started:.0f}s")
    return result.stdout


def package_zips(workdir: Path) -> tuple[Path, Path]:
    """Snapshot the packages: another build of dist/ during the apply must not change them."""
    dist = REPO / "dist" / "lambda"
    if not ((dist / "ingest.zip").is_file() and (dist / "api.zip").is_file()):
        progress("dist/lambda/*.zip missing: running scripts/package_lambdas.py")
        subprocess.run([sys.executable, str(REPO / "scripts" / "package_lambdas.py")], check=True)
    copies = []
    for name in ("ingest.zip", "api.zip"):
        copy = workdir / name
        shutil.copyfile(dist / name, copy)
        copies.append(copy)
    return copies[0], copies[1]


def count_resources(module: dict[str, Any]) -> int:
    managed = [r for r in module.get("resources", []) if r["mode"] == "managed"]
    return len(managed) + sum(count_resources(child) for child in module.get("child_modules", []))


def key_arn(moto_url: str, key_id: str) -> str:
    return str(client("kms", moto_url).describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])


def customer_managed_rotating(moto_url: str, key_id: str) -> bool:
    kms = client("kms", moto_url)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    rotation = kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]
    return bool(meta["KeyManager"] == "CUSTOMER" and rotation)
