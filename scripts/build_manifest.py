"""The build manifest (dist/lambda/manifest.json) and `make verify-artifacts`.

`make package` writes the manifest last, after both zips and their SBOMs: the commit it was built from, the
digests of the locks, the target (Python and platform tags) and the builder (Python, pip, zlib), and per zip
its sha256, size, Lambda-style CodeSha256, payload digest and SBOM digest. It holds no time and no path, so
two builds of one commit write the same manifest byte for byte.

What is compared with a deployed function (`make verify-build`, docs/gates.md "Verifying a build"):
  - `code_sha256` is what Lambda reports as CodeSha256 for a package deployed unsigned (the emulator);
  - `payload_sha256` survives AWS Signer, which adds its signature to the package and so changes the bytes
    and CodeSha256: it is the sha256 of one line per member, "<sha256 of content> <mode> <name>", in archive
    order. verify-build downloads the deployed package, checks it against CodeSha256, and compares this.

SHA256SUMS is written from the manifest and checked against it, so the digests have one source of truth.

    python scripts/build_manifest.py verify [--dir dist/lambda] [--commit SHA]   # make verify-artifacts
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "rampart.build-manifest/1"
MANIFEST_NAME = "manifest.json"
SUMS_NAME = "SHA256SUMS"
LOCKS = ("requirements/lambda.txt", "requirements/dev.txt")
DEPLOYED_DIGEST = (
    "Lambda's CodeSha256 is the sha256 (base64) of the package a version runs. Unsigned (the emulator) it "
    "equals artifacts.<zip>.code_sha256. Signed by AWS Signer (production) the package carries the signature "
    "and its CodeSha256 differs: verify-build downloads it (GetFunction Code.Location), checks the download "
    "against CodeSha256 and compares payload_sha256 (members' content digests, modes and names, in order)."
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256 format: base64 of the raw sha256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def payload_lines(archive: zipfile.ZipFile) -> list[str]:
    """One line per member: content sha256, Unix mode (octal), name; archive order."""
    lines = []
    for info in archive.infolist():
        content = hashlib.sha256(archive.read(info)).hexdigest()
        lines.append(f"{content} {info.external_attr >> 16:o} {info.filename}")
    return lines


def payload_sha256(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        text = "".join(line + "\n" for line in payload_lines(archive))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def git(*args: str, cwd: Path = ROOT) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603,S607
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def source_state(root: Path = ROOT) -> tuple[str, bool]:
    """(commit, clean): HEAD, and whether nothing that goes into a build differs from it (untracked included)."""
    commit = git("rev-parse", "HEAD", cwd=root) or "unknown"
    status = git("status", "--porcelain", "--", "src", "requirements", "scripts", "pyproject.toml", cwd=root)
    return commit, status == ""


def artifact_entry(zip_path: Path, sbom_path: Path) -> dict[str, Any]:
    data = zip_path.read_bytes()
    with zipfile.ZipFile(zip_path) as archive:
        files = len(archive.infolist())
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "code_sha256": code_sha256(data),
        "payload_sha256": payload_sha256(zip_path),
        "files": files,
        "sbom": {"file": sbom_path.name, "sha256": sha256_file(sbom_path)},
    }


def make_manifest(
    *,
    commit: str,
    clean: bool,
    target: dict[str, Any],
    builder: dict[str, str],
    inputs: dict[str, Any],
    artifacts: dict[str, dict[str, Any]],
    root: Path = ROOT,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "commit": commit,
        "source_clean": clean,
        "locks": {lock: sha256_file(root / lock) for lock in LOCKS},
        "target": target,
        "builder": builder,
        "inputs": inputs,
        "artifacts": artifacts,
        "deployed_digest": DEPLOYED_DIGEST,
    }


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def sums_text(manifest: dict[str, Any]) -> str:
    """SHA256SUMS, derived from the manifest (the one source of truth for the digests): each zip and its SBOM, in
    `sha256sum -c` format, so anyone can check a download with coreutils alone."""
    lines = []
    for name, entry in sorted(manifest["artifacts"].items()):
        lines.append(f"{entry['sha256']}  {name}\n")
        lines.append(f"{entry['sbom']['sha256']}  {entry['sbom']['file']}\n")
    return "".join(lines)


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write SHA256SUMS (from the manifest), then the manifest, each atomically."""
    for name, text in ((SUMS_NAME, sums_text(manifest)), (MANIFEST_NAME, dumps(manifest))):
        partial = out_dir / f".{name}.partial"
        partial.write_text(text, encoding="utf-8")
        partial.replace(out_dir / name)
    return out_dir / MANIFEST_NAME


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{path}: no build manifest (run `make package`)") from None
    except ValueError as error:
        raise SystemExit(f"{path}: not JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise SystemExit(f"{path}: not a {SCHEMA} manifest")
    return manifest


def verify_artifacts(out_dir: Path, manifest: dict[str, Any], expect_commit: str | None) -> list[str]:
    """Everything in `out_dir` that disagrees with the manifest (an empty list: all agree).

    Standard library only (with sbom.check_sbom): the plan, apply and deploy jobs run it with the runner's python3
    before they assume a role, installing nothing."""
    from sbom import check_sbom  # noqa: PLC0415 - sibling script; imported here so the manifest needs no SBOM tooling

    problems: list[str] = []
    if expect_commit and manifest.get("commit") != expect_commit:
        problems.append(f"manifest is for commit {manifest.get('commit')}, expected {expect_commit}")
    expected = set(manifest["artifacts"]) | {e["sbom"]["file"] for e in manifest["artifacts"].values()}
    present = {p.name for p in out_dir.iterdir() if p.is_file() and p.name not in (MANIFEST_NAME, SUMS_NAME)}
    problems += [f"{name}: not in the manifest" for name in sorted(present - expected)]
    sums = out_dir / SUMS_NAME
    if not sums.is_file():
        problems.append(f"{SUMS_NAME}: missing")
    elif sums.read_text(encoding="utf-8") != sums_text(manifest):
        problems.append(f"{SUMS_NAME}: differs from what the manifest says (the manifest is the source of truth)")
    for name, entry in sorted(manifest["artifacts"].items()):
        zip_path, sbom_path = out_dir / name, out_dir / entry["sbom"]["file"]
        if not zip_path.is_file():
            problems.append(f"{name}: missing")
            continue
        actual_size, actual_sha = zip_path.stat().st_size, sha256_file(zip_path)
        if actual_size != entry["size"] or actual_sha != entry["sha256"]:
            problems.append(f"{name}: sha256 {actual_sha} ({actual_size} bytes), manifest says {entry['sha256']}")
        if not sbom_path.is_file():
            problems.append(f"{sbom_path.name}: missing")
            continue
        if sha256_file(sbom_path) != entry["sbom"]["sha256"]:
            problems.append(f"{sbom_path.name}: sha256 differs from the manifest")
        try:
            problems += [f"{sbom_path.name}: {p}" for p in check_sbom(zip_path, sbom_path)]
        except zipfile.BadZipFile as error:  # a corrupted zip is a finding, not a crash
            problems.append(f"{name}: not a readable zip ({error})")
    return problems


def report(lines: Iterable[str]) -> None:
    for line in lines:
        print(f"==> [verify-artifacts] {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check a dist directory against its manifest (make verify-artifacts)")
    verify.add_argument("--dir", type=Path, default=ROOT / "dist" / "lambda")
    verify.add_argument("--commit", help="require the manifest to be for this commit (default: HEAD, if a git tree)")
    verify.add_argument("--any-commit", action="store_true", help="do not compare the manifest's commit")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.dir / MANIFEST_NAME)
    expect = None if args.any_commit else (args.commit or git("rev-parse", "HEAD"))
    problems = verify_artifacts(args.dir, manifest, expect)
    if problems:
        report([f"FAIL: {p}" for p in problems])
        return 1
    names = ", ".join(f"{n} {e['sha256'][:12]}" for n, e in sorted(manifest["artifacts"].items()))
    dirty = "" if manifest.get("source_clean") else " (built from a tree with uncommitted changes)"
    report([f"{args.dir}: every artifact matches the manifest of {manifest['commit'][:12]}{dirty}: {names}"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
