"""`make verify-build`: a commit rebuilt from scratch matches what the pipeline recorded and what a function
version runs in the emulator (moto Lambda); a tampered package or manifest is a mismatch."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from tests.gates.source_tree import REPO, clone, snapshot_repo

sys.path.insert(0, str(REPO / "scripts"))
import build_manifest
import package_lambdas
import verify_build

REGION = "eu-west-1"
WHEEL_CACHE = REPO / "build" / "lambda-wheels"
FUNCTIONS = {"ingest.zip": "rampart-verify-ingest", "api.zip": "rampart-verify-api"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the gate does for a commit: build it in a checkout of its own, keep dist/lambda (the artifact)."""
    package_lambdas.wheel_cache(WHEEL_CACHE)
    root = tmp_path_factory.mktemp("verify")
    repository = root / "repository"
    commit = snapshot_repo(repository)
    gate = clone(repository, root / "gate-checkout")
    subprocess.run(
        [sys.executable, "scripts/package_lambdas.py", "--cache-dir", str(WHEEL_CACHE)],
        cwd=gate, capture_output=True, text=True, check=True,
    )  # fmt: skip
    artifact = shutil.copytree(gate / "dist" / "lambda", root / "artifact")
    return {"repository": repository, "commit": commit, "artifact": artifact}


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")  # pragma: allowlist secret - moto's dummy credentials
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("RAMPART_INGEST_FUNCTION", "RAMPART_API_FUNCTION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def lambda_client(url: str) -> Any:
    return boto3.client("lambda", endpoint_url=url, region_name=REGION)


@pytest.fixture(scope="module")
def deployed(emulator: str, pipeline: dict[str, Any]) -> dict[str, str]:
    """Both functions created from the gate's zips, version published, alias `live` on it."""
    iam = boto3.client("iam", endpoint_url=emulator, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")  # pragma: allowlist secret  # fmt: skip
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    role = iam.create_role(RoleName="rampart-verify", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    client = boto3.client("lambda", endpoint_url=emulator, region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # pragma: allowlist secret  # fmt: skip
    for zip_name, function in FUNCTIONS.items():
        client.create_function(
            FunctionName=function, Runtime="python3.12", Role=role, Architectures=["arm64"],
            Handler=f"rampart.{zip_name.removesuffix('.zip')}.handler.lambda_handler",
            Code={"ZipFile": (pipeline["artifact"] / zip_name).read_bytes()}, Publish=False,
        )  # fmt: skip
        version = client.publish_version(FunctionName=function, Description=pipeline["commit"])["Version"]
        client.create_alias(FunctionName=function, Name="live", FunctionVersion=version)
    return FUNCTIONS


def run_verify(pipeline: dict[str, Any], *extra: str, manifest: Path | None = None) -> int:
    args = [
        "--version", pipeline["commit"], "--manifest", str(manifest or pipeline["artifact"] / "manifest.json"),
        "--repo", str(pipeline["repository"]), "--python", sys.executable, "--wheel-cache", str(WHEEL_CACHE), *extra,
    ]  # fmt: skip
    return verify_build.main(args)


def function_args(emulator: str) -> list[str]:
    return ["--endpoint-url", emulator, "--function", f"ingest={FUNCTIONS['ingest.zip']}",
            "--function", f"api={FUNCTIONS['api.zip']}"]  # fmt: skip


@pytest.mark.usefixtures("aws_env")
def test_verify_build_matches_the_manifest_and_the_deployed_versions_then_catches_a_tampered_one(
    pipeline: dict[str, Any], emulator: str, deployed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_verify(pipeline, *function_args(emulator)) == 0
    out = capsys.readouterr().out
    assert out.count("match: sha256") == 2 and out.count("is the rebuilt zip (unsigned package)") == 2, out
    assert "MATCH: every comparison agrees" in out

    # Someone with deploy rights ships a modified API package: a new version, and the alias moved to it.
    client = lambda_client(emulator)
    original = (pipeline["artifact"] / "api.zip").read_bytes()
    client.update_function_code(FunctionName=deployed["api.zip"], ZipFile=tamper(original))
    version = client.publish_version(FunctionName=deployed["api.zip"], Description=pipeline["commit"])["Version"]
    client.update_alias(FunctionName=deployed["api.zip"], Name="live", FunctionVersion=version)
    try:
        assert run_verify(pipeline, *function_args(emulator)) == 1
        out = capsys.readouterr().out
        api_line = next(line for line in out.splitlines() if f"{deployed['api.zip']}:live" in line)
        ingest_line = next(line for line in out.splitlines() if f"{deployed['ingest.zip']}:live" in line)
        assert "MISMATCH" in api_line and "MISMATCH" not in ingest_line, out
    finally:
        client.update_alias(FunctionName=deployed["api.zip"], Name="live", FunctionVersion="1")


def tamper(data: bytes) -> bytes:
    """The same zip with one line added to the API handler (what an attacker with deploy rights would ship)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "rampart/api/handler.py":
                content += b"\nimport urllib.request  # exfiltrate\n"
            target.writestr(info, content)
    return out.getvalue()


def test_a_manifest_that_does_not_match_the_rebuild_is_a_mismatch(
    pipeline: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((pipeline["artifact"] / "manifest.json").read_text())
    manifest["artifacts"]["ingest.zip"]["sha256"] = "0" * 64
    manifest["artifacts"]["ingest.zip"]["payload_sha256"] = "0" * 64
    lying = tmp_path / "manifest.json"
    lying.write_text(json.dumps(manifest))
    assert run_verify(pipeline, manifest=lying) == 1
    out = capsys.readouterr().out
    assert "ingest.zip" in out and "MISMATCH: rebuilt sha256" in out


@pytest.mark.parametrize("problem", ["other-commit", "dirty", "not-a-commit", "http-url"])
def test_verify_build_refuses_what_it_cannot_verify(
    pipeline: dict[str, Any], tmp_path: Path, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((pipeline["artifact"] / "manifest.json").read_text())
    path = tmp_path / "manifest.json"
    extra: list[str] = []
    if problem == "other-commit":
        manifest["commit"] = "f" * 40
    elif problem == "dirty":
        manifest["source_clean"] = False
    path.write_text(json.dumps(manifest))
    args = ["--version", pipeline["commit"], "--manifest", str(path), "--repo", str(pipeline["repository"]),
            "--python", sys.executable, "--wheel-cache", str(WHEEL_CACHE), *extra]  # fmt: skip
    if problem == "not-a-commit":
        args[1] = "no-such-branch"
    elif problem == "http-url":
        args[3] = "http://example.invalid/manifest.json"
    assert verify_build.main(args) == 2
    assert "cannot verify" in capsys.readouterr().out


def test_an_rds_ca_bundle_the_pipeline_shipped_must_be_supplied_and_match(tmp_path: Path) -> None:
    recorded = {"inputs": {"rds_ca_bundle": {"path": "rampart/certs/rds-ca.pem", "sha256": "a" * 64}}}
    with pytest.raises(verify_build.VerifyError, match="pass RDS_CA"):
        verify_build.prepare_rds_ca(recorded, tmp_path, None)
    bundle = tmp_path / "other.pem"
    bundle.write_text("not the one")
    with pytest.raises(verify_build.VerifyError, match="but the pipeline shipped"):
        verify_build.prepare_rds_ca(recorded, tmp_path, bundle)
    recorded["inputs"]["rds_ca_bundle"]["sha256"] = build_manifest.sha256_file(bundle)
    assert verify_build.prepare_rds_ca(recorded, tmp_path, bundle) is True
    assert (tmp_path / "build" / "rds-ca.pem").read_text() == "not the one"


# ---- a signed package (AWS Signer changes the bytes; moto has no Signer, so a stand-in signs) ----


def signed(data: bytes) -> bytes:
    """A stand-in for AWS Signer's output: the same members, a signature outside them (the archive comment)."""
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as archive:
        archive.comment = b"stand-in signature: " + bytes(range(32))
    return out.getvalue()


@pytest.mark.parametrize(
    ("deployed_kind", "matched", "message"),
    [
        ("signed", True, "holds exactly the rebuilt zip's members"),
        ("signed-tampered", False, "changed: rampart/api/handler.py"),
        ("download-differs", False, "not the one CodeSha256 names"),
        ("no-download", False, "could not be read"),
        ("duplicate-member", False, "order or duplicated members"),
    ],
)
def test_a_signed_package_is_compared_by_its_members(
    pipeline: dict[str, Any], tmp_path: Path, deployed_kind: str, matched: bool, message: str
) -> None:
    built = pipeline["artifact"] / "api.zip"
    package = signed(built.read_bytes())
    if deployed_kind == "signed-tampered":
        package = signed(tamper(built.read_bytes()))
    elif deployed_kind == "duplicate-member":
        package = signed(smuggle(built.read_bytes()))
    code_sha256 = build_manifest.code_sha256(package)
    served = signed(tamper(built.read_bytes())) if deployed_kind == "download-differs" else package

    def fetch(url: str) -> bytes:
        assert url == "https://awslambda.example/package"
        if deployed_kind == "no-download":
            raise OSError("403 Forbidden")
        return served

    result = verify_build.compare_deployed("api", code_sha256, "https://awslambda.example/package", built, fetch)
    assert result.matched is matched and message in result.detail, result.detail


def smuggle(data: bytes) -> bytes:
    """A second entry named like the handler, placed first: extractors that keep either copy disagree."""
    out = io.BytesIO()
    with (
        warnings.catch_warnings(action="ignore", category=UserWarning),  # "Duplicate name": the point here
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        target.writestr(zipfile.ZipInfo("rampart/api/handler.py", (1980, 1, 1, 0, 0, 0)), b"import os  # smuggled\n")
        for info in source.infolist():
            target.writestr(info, source.read(info))
    return out.getvalue()


def test_packages_are_downloaded_over_https_only() -> None:
    with pytest.raises(OSError, match="refusing"):
        verify_build.fetch_https("http://awslambda.example/package")
