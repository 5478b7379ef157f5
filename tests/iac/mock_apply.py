"""A module applied against Terraform's mocked AWS provider: every value the code computes, offline, in seconds.

`terraform test` with a `mock_provider` plans and "applies" a module without calling AWS: inputs, locals, for_each,
preconditions, validations and the provider's own argument checks all run; computed attributes get the mocks'
defaults (or generated strings). With `-json -verbose` it prints the resulting state, which this harness returns,
so a proof can check what the module would apply (alarms, trust documents) as the emulator proofs check the applied
stack, fast enough for `make prove-controls` to rerun per mutation. A module is copied with its siblings (modules
use ../kms_key) into a temporary folder; nothing is written into the tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.iac.emulator import IAC, TERRAFORM, terraform_env

# Mocks every module needs: the data sources they read, and valid ARNs where the provider validates one.
ACCOUNT = "000000000000"
REGION = "eu-central-1"
COMMON_MOCKS = f"""
  mock_data "aws_region" {{
    defaults = {{ name = "{REGION}" }}
  }}
  mock_data "aws_caller_identity" {{
    defaults = {{ account_id = "{ACCOUNT}" }}
  }}
  mock_data "aws_partition" {{
    defaults = {{ partition = "aws" }}
  }}
  mock_data "aws_iam_policy_document" {{
    defaults = {{ json = "{{}}" }}
  }}
"""


@dataclass
class MockApply:
    """The outcome of one mocked apply: ``status`` pass/fail/error, the state's resources, the diagnostics."""

    status: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)

    def of_type(self, rtype: str, mode: str = "managed") -> dict[str, dict[str, Any]]:
        """``{address: values}`` of every resource (or data source) of one type."""
        return {r["address"]: r["values"] for r in self.resources if r["type"] == rtype and r["mode"] == mode}

    def one(self, address: str) -> dict[str, Any]:
        found = [r["values"] for r in self.resources if r["address"] == address]
        assert len(found) == 1, f"{address}: {len(found)} in the mocked state"
        return dict(found[0])


def _hcl(value: Any) -> str:
    # HCL's object constructor accepts JSON's `"key": value`; strings, numbers, lists and bools are the same.
    return json.dumps(value)


def mock_apply(module: str, variables: dict[str, Any], mocks: str = "", iac: Path = IAC) -> MockApply:
    """Apply ``iac/modules/<module>`` with ``variables`` against the mocked provider (``mocks``: extra
    ``mock_resource``/``mock_data`` blocks). Terraform errors (a failed precondition or validation) give status
    ``fail``/``error`` with their diagnostics, not an exception."""
    with tempfile.TemporaryDirectory(prefix=f"mock-apply-{module}-") as tmp:
        work = Path(tmp)
        shutil.copytree(
            iac / "modules", work / "modules", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "tests")
        )
        root = work / "modules" / module
        (root / "tests").mkdir()
        assigned = "\n".join(f"  {name} = {_hcl(value)}" for name, value in variables.items())
        (root / "tests" / "mock_apply.tftest.hcl").write_text(
            f'mock_provider "aws" {{\n{COMMON_MOCKS}{mocks}}}\n\nvariables {{\n{assigned}\n}}\n\n'
            'run "mock_apply" {\n  command = apply\n}\n',
            encoding="utf-8",
        )
        env = terraform_env(work)
        for key in [k for k in env if k.startswith("TF_VAR_")]:
            del env[key]
        init = subprocess.run(
            [TERRAFORM, "init", "-backend=false", "-input=false", "-no-color"],
            cwd=root, env=env, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        if init.returncode != 0:
            return MockApply("error", diagnostics=[init.stdout + init.stderr])
        tested = subprocess.run(
            [TERRAFORM, "test", "-json", "-verbose", "-no-color"],
            cwd=root, env=env, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
    return _read(tested.stdout, tested.stderr)


def _read(stdout: str, stderr: str) -> MockApply:
    result = MockApply("error")
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        kind = message.get("type")
        if kind == "test_run" and message["test_run"].get("progress") == "complete":
            result.status = message["test_run"]["status"]
        elif kind == "test_state":
            state = message["test_state"]
            result.resources = _resources(state.get("root_module", {}))
            result.outputs = {k: v.get("value") for k, v in state.get("outputs", {}).items()}
        elif kind == "diagnostic":
            diagnostic = message["diagnostic"]
            result.diagnostics.append(f"{diagnostic.get('summary', '')}: {diagnostic.get('detail', '')}")
    if result.status == "error" and not result.diagnostics:
        result.diagnostics.append(stderr or stdout[-2000:])
    return result


def _resources(module: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(module.get("resources", []))
    for child in module.get("child_modules", []):
        found += _resources(child)
    return found
