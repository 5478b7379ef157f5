"""scripts/package_lambdas.py builds reproducible, complete and lean Lambda packages."""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import os
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


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two full builds (wheels from the shared cache) into separate directories."""
    first = tmp_path_factory.mktemp("build-1")
    second = tmp_path_factory.mktemp("build-2")
    package_lambdas.main(["--out-dir", str(first)])
    package_lambdas.main(["--out-dir", str(second)])
    return first, second


def test_two_builds_are_byte_identical(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    for name in ("ingest.zip", "api.zip"):
        assert sha256(first / name) == sha256(second / name), f"{name} is not reproducible"


def test_package_contents(two_builds: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(two_builds[0] / "ingest.zip") as archive:
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
        assert not name.startswith(("boto3/", "botocore/")), "boto3 comes with the Lambda runtime"
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


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
