"""iac/tools/terraformrc.sh: the provider mirror when there is one, the registry only on GitHub Actions, and a
loud failure anywhere else. Run with a fake search root, so the machine's own mirror does not count."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "iac" / "tools" / "terraformrc.sh"


def run(tmp_path: Path, *, roots: list[Path], **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out" / "terraformrc"
    base = {k: v for k, v in os.environ.items() if k not in {"TF_PROVIDER_MIRROR", "GITHUB_ACTIONS"}}
    base.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        TF_PROVIDER_SEARCH_ROOTS=" ".join(str(r) for r in roots),
        **env,
    )
    result = subprocess.run(["bash", str(SCRIPT), str(out)], env=base, capture_output=True, text=True, check=False)
    return result, out


def fake_mirror(root: Path) -> Path:
    binary = root / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws_v5.100.0_x5"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF")
    return root


@pytest.mark.parametrize("github_actions", ["", "true"])
def test_mirror_found_means_mirror_only(tmp_path: Path, github_actions: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    mirror = fake_mirror(tmp_path / "plugins")
    result, out = run(tmp_path, roots=[empty, mirror], GITHUB_ACTIONS=github_actions)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    config = out.read_text()
    assert re.search(rf'filesystem_mirror \{{\s+path\s+= "{re.escape(str(mirror))}"', config)
    assert "direct" not in config.replace("no direct {} block", ""), "a mirror config must never reach the network"


def test_mirror_found_below_a_search_tree(tmp_path: Path) -> None:
    mirror = fake_mirror(tmp_path / "tree" / "deep" / "mirror")
    result, out = run(tmp_path, roots=[tmp_path / "tree"])
    assert result.returncode == 0, result.stderr
    assert f'path    = "{mirror}"' in out.read_text()


def test_explicit_mirror_must_hold_the_provider(tmp_path: Path) -> None:
    result, out = run(tmp_path, roots=[], TF_PROVIDER_MIRROR=str(tmp_path))
    assert result.returncode == 1 and "holds no registry.terraform.io/hashicorp/aws" in result.stderr
    assert not out.exists()


def test_github_without_mirror_falls_back_to_the_registry(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result, out = run(tmp_path, roots=[empty], GITHUB_ACTIONS="true")
    assert result.returncode == 0, result.stderr
    config = out.read_text()
    assert "filesystem_mirror" not in config
    assert re.search(r'direct \{\s+include = \["registry.terraform.io/hashicorp/\*"\]', config)
    assert ".terraform.lock.hcl" in result.stderr  # says the lock pins the hashes


@pytest.mark.parametrize("github_actions", ["", "false", "1"])
def test_elsewhere_without_mirror_fails_loudly(tmp_path: Path, github_actions: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result, out = run(tmp_path, roots=[empty], GITHUB_ACTIONS=github_actions)
    assert result.returncode == 1
    assert not out.exists(), "no config may be written, or a later step would use it"
    for hint in ("no provider mirror", "terraform providers mirror", "TF_PROVIDER_MIRROR=", str(empty)):
        assert hint in result.stderr, hint


def test_the_generated_config_is_what_terraform_accepts(tmp_path: Path) -> None:
    """The registry config parses: terraform reads it without a CLI configuration error."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result, out = run(tmp_path, roots=[empty], GITHUB_ACTIONS="true")
    assert result.returncode == 0
    version = subprocess.run(
        ["terraform", "version"],
        env={**os.environ, "TF_CLI_CONFIG_FILE": str(out), "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert version.returncode == 0 and "problems with the CLI configuration" not in version.stderr, version.stderr
