"""Build the two Lambda deployment packages: dist/lambda/ingest.zip and dist/lambda/api.zip.

Each zip holds the hash-pinned runtime lock (requirements/lambda.txt, wheels for CPython 3.12 on
manylinux aarch64) plus the `rampart` package without what only runs on a developer machine
(rampart/local, the CLI, the client). boto3 is not bundled: the Lambda runtime provides it.

The zips are reproducible on any machine, from any folder: entries sorted by name, every timestamp
1980-01-01 00:00, mode 0644, DEFLATE level 9, no bytecode, and nothing that depends on where or by whom the
build ran. pip writes one thing that does: a console script's shebang names the build's interpreter, and the
RECORD of its distribution lists that script's hash (jmespath's bin/jp.py). Console scripts are not shipped,
so every shipped RECORD is rewritten to list exactly the shipped files of its distribution, with their
hashes, sorted; installer-only files that can hold a path (direct_url.json) are dropped; and the build fails
if any shipped file contains the build's folder, temporary folder, wheel cache or interpreter prefix.
Beside each zip `make package` writes its CycloneDX SBOM (<name>.cdx.json, scripts/sbom.py), then
SHA256SUMS and the build manifest (manifest.json, scripts/build_manifest.py) last, so a build that failed
half-way leaves no manifest.
Wheels are downloaded once per lock into build/lambda-wheels/<lock hash>/ and reused offline.

The RDS CA bundle (sslmode=verify-full, RAMPART_DB_SSLROOTCERT=/var/task/rampart/certs/rds-ca.pem) ships as
rampart/certs/rds-ca.pem, taken from build/rds-ca.pem (written by `make rds-ca`) or else from
src/rampart/certs/rds-ca.pem. Whatever is shipped must parse as PEM certificates whose subjects all name
"Amazon RDS". With RAMPART_REQUIRE_RDS_CA=1 (deploy.yml, terraform.yml) a missing bundle fails the build.
`--check-rds-ca FILE` runs only that check (used by `make rds-ca` on the downloaded file).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib.metadata
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509  # in the dev lock (requirements/dev.txt), so in .venv

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, also when imported by tests
import build_manifest
import sbom

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lambda.txt"
SRC_PACKAGE = ROOT / "src" / "rampart"
FUNCTIONS = ("ingest", "api")
TARGET: dict[str, Any] = {
    "runtime": "python3.12",
    "architecture": "arm64",
    "implementation": "cp",
    "python_version": "3.12",
    "platforms": ["manylinux2014_aarch64", "manylinux_2_28_aarch64"],
}

# Lambda python3.12 on arm64 (Amazon Linux 2023, glibc 2.34).
PLATFORM_ARGS = [
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_aarch64",
    "--platform",
    "manylinux_2_28_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
]

# Inside src/rampart: only the developer-machine parts are left out.
EXCLUDED_PACKAGE_PATHS = ("local", "cli", "client.py", "tests")
EXCLUDED_DIR_NAMES = {"__pycache__", "tests", "test"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
RDS_CA_BUNDLE = Path("rampart") / "certs" / "rds-ca.pem"
# Where the bundle is taken from, first found wins: the checked download of `make rds-ca`, then src/.
RDS_CA_SOURCES = (ROOT / "build" / "rds-ca.pem", ROOT / "src" / RDS_CA_BUNDLE)
RDS_CA_SUBJECT_MARK = "Amazon RDS"
PEM_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
MIB = 1024 * 1024
LAMBDA_UNZIPPED_LIMIT = 250 * 1000 * 1000  # bytes, Lambda's limit for an unzipped package


def log(message: str) -> None:
    print(f"==> [package] {message}", flush=True)


def pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PIP_CONFIG_FILE"] = os.devnull  # no user or site pip configuration changes what is built
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PIP_FIND_LINKS", None)  # only the lock's wheels, from the index or the cache
    env.pop("PIP_NO_INDEX", None)
    return env


def run_pip(args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", *args]
    result = subprocess.run(command, env=pip_env(), capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"pip failed ({result.returncode}): {' '.join(command)}")


def lock_digest() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]


def wheel_cache(cache_root: Path) -> Path:
    """Download the lock's wheels once; later builds install from the cache without the network."""
    cache = cache_root / lock_digest()
    marker = cache / ".complete"
    if marker.exists():
        log(f"wheels: cached in {cache.relative_to(ROOT) if cache.is_relative_to(ROOT) else cache}")
        return cache
    log(f"wheels: downloading the lock for cp312 manylinux aarch64 into {cache}")
    cache.mkdir(parents=True, exist_ok=True)
    run_pip(["download", "--require-hashes", *PLATFORM_ARGS, "--dest", str(cache), "-r", str(LOCK)])
    marker.write_text(LOCK.name + "\n")
    return cache


def install_dependencies(cache: Path, target: Path) -> None:
    log("dependencies: pip install --require-hashes --target (offline, from the wheel cache)")
    run_pip(
        [
            "install",
            "--require-hashes",
            *PLATFORM_ARGS,
            "--no-index",
            "--find-links",
            str(cache),
            "--no-compile",
            "--target",
            str(target),
            "-r",
            str(LOCK),
        ]
    )


def _included(relative: Path) -> bool:
    parts = relative.parts
    if any(part in EXCLUDED_DIR_NAMES for part in parts[:-1]):
        return False
    return not relative.name.endswith(EXCLUDED_SUFFIXES)


def package_files(package_dir: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, source path) for every file of src/rampart that ships."""
    for path in package_dir.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(package_dir)
        if relative.parts[0] in EXCLUDED_PACKAGE_PATHS or not _included(relative):
            continue
        yield (Path("rampart", relative).as_posix(), path)


def dependency_files(target: Path) -> Iterator[tuple[str, Path]]:
    for path in target.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(target)
        if relative.parts[0] == "bin" or not _included(relative):  # console scripts are unusable in Lambda
            continue
        yield (relative.as_posix(), path)


def _normal(path: str) -> str | None:
    """A RECORD path relative to the install target, or None when it points outside (../../bin/jp.py)."""
    normal = os.path.normpath(path).replace(os.sep, "/")
    return None if normal.startswith("../") or normal == ".." or os.path.isabs(normal) else normal


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def normalise_metadata(target: Path, shipped: set[str]) -> None:
    """Make every dist-info independent of the installer run: RECORD lists exactly the shipped files.

    pip's RECORD also lists files that are not shipped (console scripts, whose shebang names the build's
    interpreter, so their hash differs per build folder) in pip's own order and format; direct_url.json can
    name a local path. The new RECORD: one row per shipped file of the distribution, sorted, each with its
    sha256 and size, then RECORD itself without a hash (PEP 376 / the wheel spec).
    """
    for dist_info in sorted(target.glob("*.dist-info")):
        (dist_info / "direct_url.json").unlink(missing_ok=True)
        record = dist_info / "RECORD"
        own = f"{dist_info.name}/RECORD"
        rows = csv.reader(io.StringIO(record.read_text(encoding="utf-8")))
        paths = {p for row in rows if row and (p := _normal(row[0])) is not None and p in shipped and p != own}
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for path in sorted(paths):
            data = (target / path).read_bytes()
            writer.writerow([path, _record_hash(data), str(len(data))])
        writer.writerow([own, "", ""])
        record.write_text(buffer.getvalue(), encoding="utf-8")


MIN_MARKER = 12


def check_no_build_paths(files: dict[str, Path], markers: list[Path]) -> None:
    """Fail when a shipped file names a folder of this build (the bytes would depend on where it ran)."""
    # A folder name shorter than this (say /src) also occurs by chance in URLs and binaries: not searched.
    needles = sorted({str(m).encode() for m in markers if len(str(m)) >= MIN_MARKER}, key=len, reverse=True)
    for name, path in sorted(files.items()):
        data = path.read_bytes()
        for needle in needles:
            if needle in data:
                raise SystemExit(f"{name} contains the build path {needle.decode()!r}: the zip would depend on it")


def wheel_tags(target: Path) -> list[str]:
    """The `Tag:` lines of every installed distribution's WHEEL file (python, ABI and platform tags)."""
    tags: set[str] = set()
    for wheel in target.glob("*.dist-info/WHEEL"):
        tags.update(line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:"))
    return sorted(tags)


def write_zip(destination: Path, files: dict[str, Path]) -> None:
    """A zip whose bytes depend only on the names and contents of `files`."""
    partial = destination.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, files[name].read_bytes(), compresslevel=9)
    partial.replace(destination)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_rds_ca(path: Path) -> int:
    """Fail unless `path` is one or more PEM certificates, every one issued to an "Amazon RDS" subject."""
    data = path.read_bytes()
    blocks = data.count(PEM_CERT_BEGIN)
    if blocks == 0:
        raise SystemExit(f"{path}: no PEM certificate (not an RDS CA bundle)")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise SystemExit(f"{path}: does not parse as PEM certificates: {error}") from None
    if len(certificates) != blocks:
        raise SystemExit(f"{path}: {blocks} PEM blocks but {len(certificates)} certificates parsed")
    subjects = [c.subject.rfc4514_string() for c in certificates]
    foreign = [subject for subject in subjects if RDS_CA_SUBJECT_MARK not in subject]
    if foreign:
        raise SystemExit(f"{path}: certificates not issued to {RDS_CA_SUBJECT_MARK}: {'; '.join(foreign[:3])}")
    return len(certificates)


def rds_ca_source(sources: tuple[Path, ...] = RDS_CA_SOURCES, *, require: bool | None = None) -> Path | None:
    """The RDS CA bundle to ship (checked), or None; with `require` (default: RAMPART_REQUIRE_RDS_CA=1) fail."""
    if require is None:
        require = os.environ.get("RAMPART_REQUIRE_RDS_CA", "") == "1"
    for source in sources:
        if source.is_file():
            count = check_rds_ca(source)
            log(f"RDS CA bundle: {source} ({count} Amazon RDS certificates) -> {RDS_CA_BUNDLE.as_posix()}")
            return source
    where = " or ".join(str(s) for s in sources)
    if require:
        raise SystemExit(
            f"RAMPART_REQUIRE_RDS_CA=1 but there is no RDS CA bundle ({where}): run `make rds-ca` first; "
            "without it sslmode=verify-full cannot connect"
        )
    log(f"note: no RDS CA bundle ({where}); RAMPART_DB_SSLROOTCERT (verify-full) needs it before deploying to AWS")
    return None


def builder() -> dict[str, str]:
    """What built the zips (zlib decides DEFLATE's bytes; pip and cyclonedx-bom are pinned by the dev lock)."""
    return {
        "python": platform.python_version(),
        "pip": importlib.metadata.version("pip"),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "cyclonedx-bom": importlib.metadata.version("cyclonedx-bom"),
    }


def outputs(out_dir: Path) -> list[Path]:
    """Every file a build writes into out_dir; the manifest first, so it goes first and comes last."""
    names = [build_manifest.MANIFEST_NAME, build_manifest.SUMS_NAME]
    names += [f"{f}.zip" for f in FUNCTIONS] + [f"{f}.cdx.json" for f in FUNCTIONS]
    return [out_dir / name for name in names]


def build(out_dir: Path, cache_root: Path, budget_mib: float) -> dict[str, str]:
    if not (SRC_PACKAGE / "__init__.py").exists():
        raise SystemExit(f"{SRC_PACKAGE} is not a package")
    cache = wheel_cache(cache_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in outputs(out_dir):
        stale.unlink(missing_ok=True)
    commit, clean = build_manifest.source_state(ROOT)
    with tempfile.TemporaryDirectory(prefix="rampart-package-") as tmp:
        deps = Path(tmp) / "deps"
        install_dependencies(cache, deps)
        files = dict(dependency_files(deps))
        normalise_metadata(deps, set(files))
        files = dict(dependency_files(deps))  # direct_url.json is gone
        for name, path in package_files(SRC_PACKAGE):
            if name in files:
                raise SystemExit(f"{name} is both in the lock and in src/rampart")
            files[name] = path
        ca_bundle = rds_ca_source()
        if ca_bundle is not None:
            files[RDS_CA_BUNDLE.as_posix()] = ca_bundle
        check_no_build_paths(files, [ROOT, Path(tmp), cache, cache_root, Path(sys.prefix), out_dir])
        unzipped = sum(path.stat().st_size for path in files.values())
        digests: dict[str, str] = {}
        over_budget: list[str] = []
        for function in FUNCTIONS:
            destination = out_dir / f"{function}.zip"
            write_zip(destination, files)
            size = destination.stat().st_size
            digests[function] = sha256(destination)
            verdict = "ok" if size <= budget_mib * MIB else "OVER BUDGET"
            log(
                f"{destination.relative_to(ROOT) if destination.is_relative_to(ROOT) else destination}: "
                f"{size / MIB:.2f} MiB zipped (budget {budget_mib:g} MiB: {verdict}), "
                f"{unzipped / MIB:.2f} MiB unzipped, {len(files)} files, sha256 {digests[function]}"
            )
            if size > budget_mib * MIB:
                over_budget.append(f"{function}.zip is {size / MIB:.2f} MiB > {budget_mib:g} MiB")
        if unzipped > LAMBDA_UNZIPPED_LIMIT:
            over_budget.append(f"unzipped size {unzipped} bytes exceeds Lambda's {LAMBDA_UNZIPPED_LIMIT}")
        if over_budget:
            raise SystemExit("package over budget: " + "; ".join(over_budget))
        tags = wheel_tags(deps)
    wheels = sbom.wheel_index(cache)
    artifacts: dict[str, dict[str, Any]] = {}
    for function in FUNCTIONS:
        zip_path, sbom_path = out_dir / f"{function}.zip", out_dir / f"{function}.cdx.json"
        sbom.write_sbom(zip_path, sbom_path, package=function, commit=commit, wheels=wheels, lock=LOCK)
        artifacts[zip_path.name] = build_manifest.artifact_entry(zip_path, sbom_path)
        log(f"{sbom_path.name}: CycloneDX {sbom.SPEC_VERSION}, sha256 {artifacts[zip_path.name]['sbom']['sha256']}")
    inputs = {
        "rds_ca_bundle": None if ca_bundle is None else {"path": RDS_CA_BUNDLE.as_posix(), "sha256": sha256(ca_bundle)},
    }
    manifest = build_manifest.make_manifest(
        commit=commit,
        clean=clean,
        target={**TARGET, "wheel_tags": tags},
        builder=builder(),
        inputs=inputs,
        artifacts=artifacts,
        root=ROOT,
    )
    path = build_manifest.write_manifest(out_dir, manifest)
    dirty = "" if clean else " (uncommitted changes: not a release build)"
    log(f"{path.name}: commit {commit}{dirty}, sha256 {sha256(path)}")
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "dist" / "lambda")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "build" / "lambda-wheels")
    parser.add_argument("--budget-mib", type=float, default=15.0, help="maximum zipped size of each package")
    parser.add_argument("--clean-cache", action="store_true", help="drop cached wheels before building")
    parser.add_argument("--check-rds-ca", type=Path, metavar="FILE", help="only check FILE as an RDS CA bundle")
    args = parser.parse_args(argv)
    if args.check_rds_ca is not None:
        count = check_rds_ca(args.check_rds_ca)
        log(f"{args.check_rds_ca}: {count} PEM certificates, every subject names {RDS_CA_SUBJECT_MARK}")
        return 0
    if args.clean_cache and args.cache_dir.exists():
        shutil.rmtree(args.cache_dir)
    build(args.out_dir.resolve(), args.cache_dir.resolve(), args.budget_mib)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
