"""`make verify-build VERSION=<git sha> MANIFEST=<path or https URL>`: rebuild a commit and compare.

For anyone, with nothing but this repository: check the commit out into a temporary folder, build the zips
there from scratch (a fresh virtualenv from that commit's hash-pinned dev lock, the wheels its Lambda lock
pins), and compare

  1. each rebuilt zip with the digest the pipeline recorded in its build manifest for that commit (the
     `manifest.json` the gate uploads beside the zips, see docs/gates.md "Verifying a build"), and
  2. given function names (RAMPART_INGEST_FUNCTION / RAMPART_API_FUNCTION, or --function) and AWS credentials,
     with the package each function version runs (GetFunction, qualifier `live` by default):
       - CodeSha256 equal to the rebuilt zip's: the version runs exactly these bytes (unsigned deploy);
       - otherwise the package is downloaded (Code.Location), checked against CodeSha256, and its payload
         digest (every member's content digest, mode and name, in order) compared with the rebuilt zip's:
         AWS Signer adds a signature to the package, which changes its bytes and CodeSha256 but must leave
         every member as built (the manifest's `deployed_digest` says the same).

Prints match / MISMATCH per zip and per function; exit 0 only when everything matches, 1 on a mismatch,
2 when the verification itself could not be done (wrong commit, missing input, no credentials).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_manifest

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_ENV = {"ingest.zip": "RAMPART_INGEST_FUNCTION", "api.zip": "RAMPART_API_FUNCTION"}
MAX_PACKAGE = 260 * 1000 * 1000  # bytes; Lambda's unzipped limit bounds what a download may be


class VerifyError(Exception):
    """The verification could not be carried out (not a mismatch: nothing was compared)."""


@dataclass
class Result:
    subject: str
    matched: bool
    detail: str


def log(message: str) -> None:
    print(f"==> [verify-build] {message}", flush=True)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-3000:]
        raise VerifyError(f"{' '.join(command[:3])} ... failed ({proc.returncode}):\n{tail}")
    return proc.stdout.strip()


def load_recorded(source: str) -> dict[str, Any]:
    """The pipeline's manifest: a file, or an https URL (never plain http: a manifest must not be swapped)."""
    if "://" in source:
        if urllib.parse.urlsplit(source).scheme != "https":
            raise VerifyError(f"{source}: only https URLs (or a local path) are accepted for the manifest")
        with urllib.request.urlopen(source, timeout=60) as response:  # noqa: S310 - https checked above
            text = response.read().decode("utf-8")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            handle.write(text)
        path = Path(handle.name)
        try:
            return load_file(path)
        finally:
            path.unlink()
    return load_file(Path(source))


def load_file(path: Path) -> dict[str, Any]:
    try:
        return build_manifest.load_manifest(path)
    except SystemExit as error:
        raise VerifyError(str(error)) from None


def checkout(repo: str, version: str, destination: Path) -> str:
    """Clone `repo` into `destination` and check `version` out; returns the full commit id."""
    run(["git", "clone", "--quiet", "--no-checkout", "--no-hardlinks", repo, str(destination)], cwd=destination.parent)
    try:
        commit = run(["git", "rev-parse", "--verify", "--quiet", f"{version}^{{commit}}"], cwd=destination)
    except VerifyError:
        raise VerifyError(f"{version!r} is not a commit of {repo}") from None
    run(["git", "checkout", "--quiet", "--detach", commit], cwd=destination)
    return commit


def prepare_rds_ca(recorded: dict[str, Any], source: Path, rds_ca: Path | None) -> bool:
    """Put the RDS CA bundle the pipeline shipped (an input from outside git, pinned by its sha256) in place."""
    shipped = (recorded.get("inputs") or {}).get("rds_ca_bundle")
    if not shipped:
        return False
    if rds_ca is None:
        raise VerifyError(
            f"the pipeline shipped an RDS CA bundle (sha256 {shipped['sha256']}), an input from outside git: pass "
            "RDS_CA=<file>, e.g. `unzip -p ingest.zip rampart/certs/rds-ca.pem > rds-ca.pem` from the gate's "
            "artifact, or `make rds-ca` while AWS still serves that bundle"
        )
    digest = build_manifest.sha256_file(rds_ca)
    if digest != shipped["sha256"]:
        raise VerifyError(f"{rds_ca}: sha256 {digest}, but the pipeline shipped {shipped['sha256']}")
    (source / "build").mkdir(exist_ok=True)
    shutil.copyfile(rds_ca, source / "build" / "rds-ca.pem")
    return True


def rebuild(source: Path, out_dir: Path, *, python: str | None, wheel_cache: Path | None, with_ca: bool) -> Path:
    """Build the checked-out commit. Without `python`: a fresh .venv from its own locks (`make install`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["RAMPART_REQUIRE_RDS_CA"] = "1" if with_ca else ""
    if python is None:
        log("creating a virtualenv from the commit's hash-pinned locks (make install)")
        run(["make", "--no-print-directory", "install"], cwd=source, env=env)
        python = str(source / ".venv" / "bin" / "python")
    cache = wheel_cache or source / "build" / "lambda-wheels"
    log(f"building the zips of that commit in {source}")
    run([python, "scripts/package_lambdas.py", "--out-dir", str(out_dir), "--cache-dir", str(cache)], source, env)
    return out_dir / build_manifest.MANIFEST_NAME


def compare_builds(recorded: dict[str, Any], rebuilt: dict[str, Any]) -> list[Result]:
    results = []
    for name, want in sorted(recorded["artifacts"].items()):
        got = rebuilt["artifacts"].get(name)
        if got is None:
            results.append(Result(name, False, "not produced by the rebuild"))
        elif got["sha256"] == want["sha256"]:
            results.append(Result(name, True, f"match: sha256 {got['sha256']}"))
        elif got["payload_sha256"] == want["payload_sha256"]:
            zlibs = f"zlib {recorded['builder'].get('zlib')} vs {rebuilt['builder'].get('zlib')}"
            detail = f"match by contents (same members; compressed bytes differ, {zlibs})"
            results.append(Result(name, True, detail))
        else:
            results.append(Result(name, False, f"MISMATCH: rebuilt sha256 {got['sha256']}, recorded {want['sha256']}"))
        if got is not None and got["sbom"]["sha256"] != want["sbom"]["sha256"]:
            results.append(Result(f"{name} SBOM", False, "MISMATCH: the rebuilt SBOM differs from the recorded one"))
    extra = sorted(set(rebuilt["artifacts"]) - set(recorded["artifacts"]))
    results += [Result(name, False, "built, but not in the recorded manifest") for name in extra]
    return results


def member_lines(data: bytes) -> list[str]:
    """The payload lines of a package (build_manifest.payload_lines), duplicates and order included."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return build_manifest.payload_lines(archive)


def fetch_https(url: str) -> bytes:
    if urllib.parse.urlsplit(url).scheme != "https":
        raise OSError(f"refusing to download the package over {url.split(':', 1)[0]}")
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - https checked above
        data: bytes = response.read(MAX_PACKAGE + 1)
    if len(data) > MAX_PACKAGE:
        raise OSError("the package is larger than any Lambda package can be")
    return data


def compare_deployed(
    subject: str,
    code_sha256: str,
    location: str | None,
    rebuilt_zip: Path,
    fetch: Callable[[str], bytes] = fetch_https,
) -> Result:
    """Does the package behind CodeSha256 hold exactly the rebuilt zip's members?"""
    rebuilt = rebuilt_zip.read_bytes()
    if code_sha256 == build_manifest.code_sha256(rebuilt):
        return Result(subject, True, f"match: CodeSha256 {code_sha256} is the rebuilt zip (unsigned package)")
    if not location:
        return Result(subject, False, f"MISMATCH: CodeSha256 {code_sha256} is not the rebuilt zip's, no package URL")
    try:
        data = fetch(location)
    except OSError as error:
        return Result(subject, False, f"MISMATCH: CodeSha256 differs and the package could not be read: {error}")
    if build_manifest.code_sha256(data) != code_sha256:
        return Result(subject, False, "MISMATCH: the downloaded package is not the one CodeSha256 names")
    try:
        deployed_lines = member_lines(data)
    except zipfile.BadZipFile:
        return Result(subject, False, "MISMATCH: the deployed package is not a zip")
    built_lines = member_lines(rebuilt)
    if deployed_lines == built_lines:  # as lists: a duplicated or reordered member is a difference too
        return Result(subject, True, "match: the signed package holds exactly the rebuilt zip's members")
    deployed = {line.split(" ", 2)[2]: line for line in deployed_lines}
    built = {line.split(" ", 2)[2]: line for line in built_lines}
    changed = sorted(n for n in set(deployed) & set(built) if deployed[n] != built[n])
    added, removed = sorted(set(deployed) - set(built)), sorted(set(built) - set(deployed))
    parts = [f"{label}: {', '.join(names[:5])}" for label, names in
             (("changed", changed), ("added", added), ("missing", removed)) if names]  # fmt: skip
    detail = "; ".join(parts or ["order or duplicated members"])
    return Result(subject, False, f"MISMATCH: members differ ({detail})")


def lambda_client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3  # noqa: PLC0415 - only needed when AWS is part of the comparison
    import botocore.exceptions  # noqa: PLC0415

    session = boto3.session.Session(region_name=region)
    try:
        if session.get_credentials() is None:
            raise VerifyError("function names given, but no AWS credentials were found")
    except botocore.exceptions.BotoCoreError as error:
        raise VerifyError(f"AWS credentials: {error}") from None
    if not session.region_name:
        raise VerifyError("function names given, but no AWS region (AWS_REGION or --region)")
    return session.client("lambda", endpoint_url=endpoint_url)


def verify_functions(
    client: Any,
    functions: dict[str, str],
    qualifier: str,
    out_dir: Path,
    version: str,
    fetch: Callable[[str], bytes] = fetch_https,
) -> list[Result]:
    results = []
    for zip_name, function in sorted(functions.items()):
        subject = f"{function}:{qualifier}"
        try:
            response = client.get_function(FunctionName=function, Qualifier=qualifier)
        except Exception as error:  # noqa: BLE001 - any API failure is reported as this function's result
            results.append(Result(subject, False, f"MISMATCH: GetFunction failed: {error}"))
            continue
        config = response["Configuration"]
        result = compare_deployed(
            subject, config["CodeSha256"], (response.get("Code") or {}).get("Location"), out_dir / zip_name, fetch
        )
        described = str(config.get("Description") or "")
        note = f" [version {config.get('Version')}"
        note += f", the deploy recorded commit {described[:12]}]" if described and described != version else "]"
        results.append(Result(subject + f" ({zip_name})", result.matched, result.detail + note))
    return results


def print_results(title: str, results: list[Result]) -> None:
    log(title)
    width = max((len(r.subject) for r in results), default=0)
    for result in results:
        print(f"    {result.subject:<{width}}  {result.detail}", flush=True)


def parse_functions(values: list[str]) -> dict[str, str]:
    functions = {}
    for zip_name, env_name in FUNCTION_ENV.items():
        if os.environ.get(env_name):
            functions[zip_name] = os.environ[env_name]
    for value in values:
        key, sep, name = value.partition("=")
        zip_name = f"{key}.zip" if not key.endswith(".zip") else key
        if not sep or not name or zip_name not in FUNCTION_ENV:
            raise VerifyError(f"--function {value!r}: expected ingest=NAME or api=NAME")
        functions[zip_name] = name
    return functions


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rampart-verify-build-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def verify(args: argparse.Namespace, fetch: Callable[[str], bytes] = fetch_https) -> int:
    functions = parse_functions(args.function)
    recorded = load_recorded(args.manifest)
    client = lambda_client(args.region, args.endpoint_url) if functions else None
    with workspace(args.keep) as work:
        source = work / "source"
        commit = checkout(args.repo, args.version, source)
        log(f"{args.version} is commit {commit} of {args.repo}")
        if recorded.get("commit") != commit:
            raise VerifyError(f"the manifest is for commit {recorded.get('commit')}, not {commit}")
        if recorded.get("source_clean") is not True:
            raise VerifyError("the manifest is from a build with uncommitted changes: it describes no commit")
        with_ca = prepare_rds_ca(recorded, source, args.rds_ca)
        rebuilt_path = rebuild(source, work / "dist", python=args.python, wheel_cache=args.wheel_cache, with_ca=with_ca)
        rebuilt = build_manifest.load_manifest(rebuilt_path)
        results = compare_builds(recorded, rebuilt)
        print_results(f"rebuilt zips vs the recorded manifest ({args.manifest})", results)
        if client is not None:
            deployed = verify_functions(client, functions, args.qualifier, work / "dist", commit, fetch)
            print_results(f"rebuilt zips vs the deployed functions (qualifier {args.qualifier})", deployed)
            results += deployed
        else:
            log("no function names (RAMPART_INGEST_FUNCTION / RAMPART_API_FUNCTION): AWS not compared")
    failed = [r for r in results if not r.matched]
    if failed:
        log(f"MISMATCH: {len(failed)} of {len(results)} comparisons failed for {commit}")
        return 1
    log(f"MATCH: every comparison agrees for {commit}")
    return 0


def main(argv: list[str] | None = None, fetch: Callable[[str], bytes] = fetch_https) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", required=True, help="the git commit to rebuild (a sha, tag or branch)")
    parser.add_argument("--manifest", required=True, help="the pipeline's manifest.json: a path or an https URL")
    parser.add_argument("--repo", default=str(ROOT), help="git repository to clone (default: this one)")
    parser.add_argument("--rds-ca", type=Path, help="the RDS CA bundle the pipeline shipped (checked by sha256)")
    parser.add_argument("--python", help="build with this interpreter instead of a fresh venv (faster, less strict)")
    parser.add_argument("--wheel-cache", type=Path, help="reuse this wheel cache (default: download anew)")
    parser.add_argument("--function", action="append", default=[], help="ingest=NAME or api=NAME (repeatable)")
    parser.add_argument("--qualifier", default="live", help="alias or version to compare (default: live)")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--endpoint-url", help="Lambda endpoint (the emulator in tests)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    try:
        return verify(args, fetch)
    except VerifyError as error:
        log(f"cannot verify: {error}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
