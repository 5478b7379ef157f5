"""scripts/package_lambdas.py builds reproducible, complete and lean Lambda packages."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

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
        assert not name.startswith(("rampart/local/", "bin/")), name
        assert name not in ("rampart/cli.py", "rampart/client.py"), name
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
