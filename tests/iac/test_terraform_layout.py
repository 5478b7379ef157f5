"""Static conventions of iac/ that neither terraform validate nor checkov enforce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

IAC = Path(__file__).resolve().parents[2] / "iac"
MODULES = sorted(p for p in (IAC / "modules").iterdir() if p.is_dir())
ROOT = IAC / "envs"
ALL_DIRS = [*MODULES, ROOT]

VARIABLE = re.compile(r'^variable "([^"]+)" \{\n(.*?)^\}', re.MULTILINE | re.DOTALL)
OUTPUT = re.compile(r'^output "([^"]+)" \{\n(.*?)^\}', re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"#checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def tf_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.tf"))


def test_expected_modules_exist() -> None:
    names = {m.name for m in MODULES}
    assert {"network", "pubsub", "database", "functions", "api", "github_oidc", "monitoring"} <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_files_and_readme_tables(module: Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (module / name).is_file(), f"{module.name}/{name} missing"
    readme = (module / "README.md").read_text()
    variables = [name for name, _ in VARIABLE.findall((module / "variables.tf").read_text())]
    outputs = [name for name, _ in OUTPUT.findall((module / "outputs.tf").read_text())]
    for name in variables + outputs:
        assert re.search(rf"^\| `{re.escape(name)}` \|", readme, re.MULTILINE), f"{module.name}: README lacks {name}"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=lambda p: p.name)
def test_variables_have_description_and_type(directory: Path) -> None:
    for name, body in VARIABLE.findall((directory / "variables.tf").read_text()):
        assert re.search(r"^\s+description\s+=", body, re.MULTILINE), f"{directory.name}.{name}: no description"
        assert re.search(r"^\s+type\s+=", body, re.MULTILINE), f"{directory.name}.{name}: no type"
    for name, body in OUTPUT.findall((directory / "outputs.tf").read_text()):
        assert re.search(r"^\s+description\s+=", body, re.MULTILINE), f"{directory.name}.{name}: no description"


@pytest.mark.parametrize("directory", ALL_DIRS, ids=lambda p: p.name)
def test_no_hard_coded_accounts_regions_or_arns(directory: Path) -> None:
    for path in tf_files(directory):
        text = path.read_text()
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", text), f"{path}: account ID"
        assert not re.search(
            r"\b(us|eu|ap|sa|ca|me|af|il)-(east|west|north|south|central|northeast|southeast)-[0-9]\b", text
        ), f"{path}: region"
        assert not re.search(r'"arn:aws:', text), f"{path}: literal ARN (use data.aws_partition)"
        assert "alias/aws/" not in text, f"{path}: AWS-managed key"


# Every suppression, where it sits. Adding one means adding it here, to iac/README.md's table and to SECURITY.md.
DOCUMENTED_SUPPRESSIONS = sorted(
    [
        ("api", "CKV2_AWS_51"),
        ("api", "CKV_AWS_120"),
        ("api", "CKV_AWS_225"),
        ("functions", "CKV2_AWS_57"),
        ("functions", "CKV_AWS_116"),
        ("functions", "CKV_AWS_144"),  # artifact bucket: rebuilt from git
        ("functions", "CKV_AWS_144"),  # its access-log bucket
        ("functions", "CKV_AWS_145"),  # access-log bucket: log delivery supports SSE-S3 only
        ("functions", "CKV_AWS_18"),  # access-log bucket: the log destination itself
        ("kms_key", "CKV_AWS_109"),
        ("kms_key", "CKV_AWS_111"),
        ("kms_key", "CKV_AWS_356"),
        ("network", "CKV2_AWS_5"),  # lambda security group
        ("network", "CKV2_AWS_5"),  # database security group
        ("pubsub", "CKV2_RAMPART_10"),  # the subscription's delivery DLQ: a DLQ of SNS, not of an SQS queue
    ]
)


def test_every_checkov_suppression_is_documented_with_a_reason() -> None:
    found = []
    for path in sorted(IAC.rglob("*.tf")):
        for check, reason in SKIP.findall(path.read_text()):
            assert reason and len(reason.strip()) >= 30, f"{path}: {check} needs a concrete reason"
            found.append((path.parent.name, check))
    assert sorted(found) == DOCUMENTED_SUPPRESSIONS


def test_every_checkov_suppression_is_in_the_readme_table() -> None:
    rows = [line for line in (IAC / "README.md").read_text().splitlines() if line.startswith("| CKV")]
    for module, check in DOCUMENTED_SUPPRESSIONS:
        assert any(
            check in row.split("|")[1].replace(",", " ").split() and f"`modules/{module}`" in row for row in rows
        ), f"iac/README.md suppression table lacks {check} in modules/{module}"


def test_environments_differ_only_in_values() -> None:
    dev = (ROOT / "dev.tfvars").read_text()
    prod = (ROOT / "prod.tfvars").read_text()
    assert re.search(r'^environment\s+=\s+"dev"', dev, re.MULTILINE)
    assert re.search(r'^environment\s+=\s+"prod"', prod, re.MULTILINE)
    assert re.search(r"^db_multi_az\s+=\s+true", prod, re.MULTILINE), "prod runs Multi-AZ"
    assert re.search(r"^artifacts_force_destroy\s+=\s+false", prod, re.MULTILINE)
    keys = {}
    for env in ("dev", "prod"):
        backend = (ROOT / f"{env}.s3.tfbackend").read_text()
        keys[env] = re.search(r'^key\s+=\s+"([^"]+)"', backend, re.MULTILINE).group(1)  # type: ignore[union-attr]
        assert re.search(r"^encrypt\s+=\s+true", backend, re.MULTILINE)
        assert re.search(r"^use_lockfile\s+=\s+true", backend, re.MULTILINE)
        assert f"/{env}/" in keys[env]
    assert keys["dev"] != keys["prod"], "each environment has its own state"


def test_root_backend_is_partial_s3_and_provider_has_default_tags() -> None:
    versions = (ROOT / "versions.tf").read_text()
    assert re.search(r'backend "s3" \{\}', versions)
    assert 'version = "~> 5.100"' in versions and 'required_version = ">= 1.11"' in versions
    assert "default_tags" in (ROOT / "providers.tf").read_text()
