"""An OSV-compatible vulnerability endpoint on loopback, and the `make audit` gate built on it.

pip-audit queries OSV with ``POST /v1/query`` and a body ``{"package": {"name", "ecosystem"}, "version"}``;
the answer is ``{"vulns": [<OSV records>]}`` or ``{}``. This module answers that query from a directory
of OSV advisories (``vulns/<package>/<id>.yaml|json``, the layout of the PyPA advisory database), so a
machine with no route to osv.dev audits against a pinned snapshot. See docs/gates.md, "Air-gapped audit".

Matching follows the OSV schema: a version is affected when it is listed in ``affected[].versions`` or
falls in an ``ECOSYSTEM`` range (``introduced`` / ``fixed`` / ``last_affected`` / ``limit`` events, PEP 440
ordering); ``GIT`` ranges say nothing about a release and are ignored; withdrawn records are not served.

Fail-closed by construction: ``serve`` and ``audit`` refuse to start on a missing or empty advisory
directory, ``audit`` checks that the running endpoint finds a known advisory before trusting a clean
answer, and pip-audit runs with ``--strict`` (an unreachable service is an error, not "no findings").

    python scripts/osv_server.py serve [--advisories DIR] [--port 8765]
    python scripts/osv_server.py audit [--advisories DIR | --osv-url URL | --live] -r LOCK [-r LOCK ...]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ADVISORIES = REPO.parent / "shared" / "advisory-db" / "vulns"
ECOSYSTEM = "PyPI"
MAX_BODY = 64 * 1024
# A pin every OSV source must flag (PYSEC-2018-28, CVE-2018-18074): the self-test for a foreign --osv-url.
CANARY: tuple[str, str, str | None] = ("requests", "2.19.0", None)

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class AdvisoryError(RuntimeError):
    """The advisory data cannot be used (missing, empty, unreadable)."""


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def in_ecosystem_range(version: Version, events: list[dict[str, str]]) -> bool:
    """OSV ECOSYSTEM range evaluation for one version (see the OSV schema, "Evaluation")."""
    limits: list[Version] = []
    points: list[tuple[Version, int, str]] = []
    order = {"introduced": 0, "fixed": 1, "last_affected": 2}
    for event in events:
        for kind, raw in event.items():
            if kind == "limit":
                if raw != "*" and (limit := _version(str(raw))) is not None:
                    limits.append(limit)
                continue
            if kind not in order:
                continue
            at = Version("0") if (kind == "introduced" and str(raw) == "0") else _version(str(raw))
            if at is None:
                # An unparsable boundary: an unparsable "fixed" cannot close the range, so the range stays
                # open (over-reporting beats a silent miss); an unparsable "introduced" opens nothing.
                continue
            points.append((at, order[kind], kind))
    if any(version >= limit for limit in limits):
        return False
    affected = False
    for at, _, kind in sorted(points):
        if kind == "introduced" and at <= version:
            affected = True
        elif (kind == "fixed" and at <= version) or (kind == "last_affected" and at < version):
            affected = False
    return affected


def affects(record: dict[str, Any], name: str, version_text: str) -> bool:
    """Whether an OSV record affects PyPI package `name` (canonical) at `version_text`."""
    version = _version(version_text)
    for affected in record.get("affected") or []:
        package = affected.get("package") or {}
        if package.get("ecosystem") != ECOSYSTEM or canonicalize_name(str(package.get("name", ""))) != name:
            continue
        for listed in affected.get("versions") or []:
            listed_version = _version(str(listed))
            if str(listed) == version_text or (version and listed_version and listed_version == version):
                return True
        if version is None:
            continue
        for rng in affected.get("ranges") or []:
            if rng.get("type") in {"ECOSYSTEM", "SEMVER"} and in_ecosystem_range(version, rng.get("events") or []):
                return True
    return False


def _jsonable(value: Any) -> Any:
    """YAML timestamps back to the RFC 3339 text OSV (and pip-audit's parser) expect."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
        return value.strftime(fmt)
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%dT00:00:00Z")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class AdvisoryDB:
    """OSV records indexed by canonical package name, parsed on first use of a package."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise AdvisoryError(f"advisory directory {root} does not exist")
        self.root = root
        self._dirs: dict[str, list[Path]] = {}
        for entry in sorted(root.iterdir()):
            if entry.is_dir():
                self._dirs.setdefault(canonicalize_name(entry.name), []).append(entry)
        self.count = sum(1 for d in self._all_dirs() for _ in self._files(d))
        if self.count == 0:
            raise AdvisoryError(f"advisory directory {root} holds no OSV advisories (vulns/<package>/<id>.yaml)")
        self._cache: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _all_dirs(self) -> Iterator[Path]:
        for dirs in self._dirs.values():
            yield from dirs

    @staticmethod
    def _files(directory: Path) -> Iterator[Path]:
        for path in sorted(directory.iterdir()):
            if path.suffix in {".yaml", ".yml", ".json"} and path.is_file():
                yield path

    def _load(self, path: Path) -> dict[str, Any]:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_Loader)  # noqa: S506 - CSafeLoader/SafeLoader only
        if not isinstance(data, dict) or "id" not in data:
            raise AdvisoryError(f"{path} is not an OSV record")
        return _jsonable(data)  # type: ignore[no-any-return]

    def records(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = [self._load(p) for d in self._dirs.get(name, []) for p in self._files(d)]
            return self._cache[name]

    def query(self, name: str, version: str) -> list[dict[str, Any]]:
        name = canonicalize_name(name)
        return [r for r in self.records(name) if r.get("withdrawn") is None and affects(r, name, version)]

    def canary(self) -> tuple[str, str, str | None]:
        """A (package, version, advisory id) the data must answer: the first listed version of a record."""
        for directory in self._all_dirs():
            name = canonicalize_name(directory.name)
            for record in self.records(name):
                for affected in record.get("affected") or []:
                    versions = affected.get("versions") or []
                    same_package = canonicalize_name(str(affected["package"]["name"])) == name
                    if versions and same_package and record.get("withdrawn") is None:
                        return name, str(versions[0]), str(record["id"])
        raise AdvisoryError(f"no advisory in {self.root} lists an affected version")


def make_handler(db: AdvisoryDB) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "rampart-osv/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: pip-audit sends one query per pin
            if os.environ.get("RAMPART_OSV_LOG"):
                super().log_message(format, *args)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, {"advisories": db.count, "root": str(db.root)})
            else:
                self._reply(404, {"code": 5, "message": "not found"})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/query":
                self._reply(404, {"code": 5, "message": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._reply(400, {"code": 3, "message": "a JSON body is required"})
                return
            try:
                query = json.loads(self.rfile.read(length))
                package = query["package"]
                name, version = str(package["name"]), str(query["version"])
                ecosystem = package.get("ecosystem", ECOSYSTEM)
            except (ValueError, KeyError, TypeError):
                self._reply(400, {"code": 3, "message": "expected {package: {name, ecosystem}, version}"})
                return
            if ecosystem != ECOSYSTEM:
                self._reply(400, {"code": 3, "message": f"only the {ECOSYSTEM} ecosystem is served"})
                return
            try:
                vulns = db.query(name, version)
            except (AdvisoryError, OSError, yaml.YAMLError) as exc:
                # Broken data is a server error: pip-audit turns a 5xx into a failure, never into "clean".
                self._reply(500, {"code": 13, "message": str(exc)})
                return
            self._reply(200, {"vulns": vulns} if vulns else {})

    return Handler


@contextlib.contextmanager
def running_server(db: AdvisoryDB, port: int = 0) -> Iterator[str]:
    """Serve `db` on 127.0.0.1 (an ephemeral port by default); yields the /v1/query URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(db))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def post_query(url: str, name: str, version: str, timeout: float = 10) -> dict[str, Any]:
    body = json.dumps({"package": {"name": name, "ecosystem": ECOSYSTEM}, "version": version}).encode()
    if not url.startswith(("http://127.0.0.1", "http://localhost", "https://")):
        raise ValueError(f"refusing to query {url}: loopback HTTP or HTTPS only")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - scheme checked above
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        return json.loads(response.read() or b"{}")  # type: ignore[no-any-return]


def advisories_dir(cli_value: str | None) -> Path:
    return Path(cli_value or os.environ.get("RAMPART_ADVISORY_DB") or DEFAULT_ADVISORIES)


def run_pip_audit(lock: str, osv_url: str | None) -> tuple[int, list[dict[str, Any]], str]:
    """pip-audit --strict on one hash-pinned lock; returns (exit code, vulnerable deps, stderr tail)."""
    cmd = [
        sys.executable, "-m", "pip_audit", "--strict", "--disable-pip", "--require-hashes",
        "--progress-spinner", "off", "--format", "json", "-s", "osv", "-r", lock,
    ]  # fmt: skip
    if osv_url:
        cmd += ["--osv-url", osv_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv, no shell
    found: list[dict[str, Any]] = []
    with contextlib.suppress(ValueError):
        report = json.loads(proc.stdout or "{}")
        found = [d for d in report.get("dependencies", []) if d.get("vulns")]
    return proc.returncode, found, "\n".join(proc.stderr.strip().splitlines()[-5:])


def audit(args: argparse.Namespace) -> int:
    started = time.monotonic()
    live = args.live or (os.environ.get("GITHUB_ACTIONS") == "true" and not args.advisories and not args.osv_url)
    with contextlib.ExitStack() as stack:
        if live:
            osv_url, source = None, "the live OSV service (api.osv.dev)"
        elif args.osv_url:
            osv_url, source = args.osv_url, args.osv_url
            canary = CANARY
        else:
            try:
                db = AdvisoryDB(advisories_dir(args.advisories))
            except AdvisoryError as exc:
                print(f"==> [audit] FAIL: {exc}; refusing to report a clean audit without data", file=sys.stderr)
                return 2
            try:
                canary = db.canary()
            except AdvisoryError as exc:
                print(f"==> [audit] FAIL: {exc}", file=sys.stderr)
                return 2
            osv_url = stack.enter_context(running_server(db))
            source = f"{db.count} OSV advisories in {db.root} (served on {osv_url})"
        if osv_url and not args.no_canary:
            # A clean answer is trusted only from a service that demonstrably finds a known advisory.
            name, version, vuln_id = canary
            try:
                ids = [v["id"] for v in post_query(osv_url, name, version).get("vulns", [])]
            except (OSError, ValueError) as exc:
                print(f"==> [audit] FAIL: vulnerability service self-test failed: {exc}", file=sys.stderr)
                return 2
            if not ids or (vuln_id and vuln_id not in ids):
                print(
                    f"==> [audit] FAIL: self-test: {osv_url} does not report {vuln_id or 'any advisory'} "
                    f"for {name}=={version}",
                    file=sys.stderr,
                )
                return 2
        print(f"==> [audit] pip-audit --strict against {source}")
        worst = 0
        total = 0
        for lock in args.requirement:
            code, found, tail = run_pip_audit(lock, osv_url)
            total += sum(len(d["vulns"]) for d in found)
            status = "ok" if code == 0 else ("VULNERABLE" if found else "ERROR")
            print(f"    {lock}: {status} ({sum(len(d['vulns']) for d in found)} known vulnerabilities)")
            for dep in found:
                for vuln in dep["vulns"]:
                    fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix"
                    print(f"      {dep['name']}=={dep['version']}: {vuln['id']} (fixed in: {fixes})")
            if code != 0 and not found:
                print(f"      pip-audit failed: {tail}")
            worst = max(worst, code)
    verdict = "PASS" if worst == 0 else "FAIL"
    print(f"==> [audit] findings: {total}; {verdict} in {time.monotonic() - started:.1f}s")
    return 1 if worst else 0


def serve(args: argparse.Namespace) -> int:
    try:
        db = AdvisoryDB(advisories_dir(args.advisories))
    except AdvisoryError as exc:
        print(f"osv_server: {exc}", file=sys.stderr)
        return 2
    with running_server(db, args.port) as url:
        print(f"osv_server: {db.count} advisories from {db.root} at {url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the advisories on 127.0.0.1")
    p_serve.add_argument("--advisories", help=f"OSV advisory directory (default {DEFAULT_ADVISORIES})")
    p_serve.add_argument("--port", type=int, default=8765)
    p_serve.set_defaults(func=serve)
    p_audit = sub.add_parser("audit", help="pip-audit --strict the given locks")
    p_audit.add_argument("-r", "--requirement", action="append", required=True, help="a hash-pinned lock")
    source = p_audit.add_mutually_exclusive_group()
    source.add_argument("--advisories", help="serve this OSV advisory directory on loopback")
    source.add_argument("--osv-url", help="use an already running OSV-compatible endpoint")
    source.add_argument("--live", action="store_true", help="query api.osv.dev (the default on GitHub)")
    p_audit.add_argument("--no-canary", action="store_true", help="skip the service self-test (--osv-url only)")
    p_audit.set_defaults(func=audit)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
