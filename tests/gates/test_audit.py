"""pip-audit that really audits: the loopback OSV endpoint (range evaluation, the HTTP contract pip-audit uses)
and the `audit` gate, which fails on a known-vulnerable pin and can never pass without its data."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO.parent / "shared" / "advisory-db" / "vulns"
LOCKS = ["requirements/lambda.txt", "requirements/dev.txt", "requirements/checkov.txt"]
# requests 2.19.0 with its real sha256 (pip-audit --require-hashes wants a hash; --disable-pip never fetches it).
VULNERABLE_LOCK = (
    "requests==2.19.0 \\\n    --hash=sha256:63b52e3c866428a224f97cab011de738c36aec0185aa91cfacd418b5d58911d1\n"
)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("osv_server", REPO / "scripts" / "osv_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["osv_server"] = module
    spec.loader.exec_module(module)
    return module


osv = _load()
needs_snapshot = pytest.mark.skipif(not SNAPSHOT.is_dir(), reason="the shared advisory snapshot (../shared) is absent")


def write_advisory(root: Path, package: str, record: dict[str, object]) -> None:
    (root / package).mkdir(parents=True, exist_ok=True)
    (root / package / f"{record['id']}.json").write_text(json.dumps(record), encoding="utf-8")


def record(vuln_id: str, events: list[dict[str, str]], versions: list[str] | None = None, name: str = "demo") -> dict:
    affected: dict[str, object] = {
        "package": {"name": name, "ecosystem": "PyPI"},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    }
    if versions is not None:
        affected["versions"] = versions
    return {"id": vuln_id, "summary": vuln_id, "affected": [affected], "published": "2024-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("events", "version", "affected"),
    [
        ([{"introduced": "0"}, {"fixed": "2.20.0"}], "2.19.0", True),
        ([{"introduced": "0"}, {"fixed": "2.20.0"}], "2.20.0", False),
        ([{"introduced": "0"}, {"fixed": "2.20.0"}], "2.20.0rc1", True),
        ([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}], "1.7", False),
        ([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}], "2.1", True),
        ([{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}], "0.9", False),
        ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4", True),
        ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4.1", False),
        ([{"introduced": "0"}, {"limit": "3.0"}], "2.9", True),
        ([{"introduced": "0"}, {"limit": "3.0"}], "3.0", False),
        ([{"introduced": "0"}], "99.0", True),
    ],
)
def test_ecosystem_range_evaluation(events: list[dict[str, str]], version: str, affected: bool) -> None:
    assert osv.in_ecosystem_range(Version(version), events) is affected


def test_explicit_versions_list_and_name_normalisation() -> None:
    rec = record("X-1", [], versions=["1.0.0", "1.2"], name="Demo_Pkg")
    assert osv.affects(rec, "demo-pkg", "1.0.0")
    assert osv.affects(rec, "demo-pkg", "1.2.0")  # PEP 440: 1.2 == 1.2.0
    assert not osv.affects(rec, "demo-pkg", "1.1")
    assert not osv.affects(rec, "other", "1.0.0")


@pytest.fixture
def advisories(tmp_path: Path) -> Path:
    root = tmp_path / "vulns"
    write_advisory(root, "demo", record("DEMO-1", [{"introduced": "0"}, {"fixed": "2.0"}], versions=["1.0"]))
    withdrawn = record("DEMO-2", [{"introduced": "0"}])
    withdrawn["withdrawn"] = "2024-02-01T00:00:00Z"
    write_advisory(root, "demo", withdrawn)
    return root


def test_http_contract_is_the_one_pip_audit_uses(advisories: Path) -> None:
    db = osv.AdvisoryDB(advisories)
    with osv.running_server(db) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/query")
        hit = osv.post_query(url, "Demo", "1.5")
        assert [v["id"] for v in hit["vulns"]] == ["DEMO-1"]  # withdrawn DEMO-2 is not served
        assert hit["vulns"][0]["published"] == "2024-01-01T00:00:00Z"
        assert osv.post_query(url, "demo", "2.0") == {}
        assert osv.post_query(url, "unknown", "1.0") == {}


def test_refuses_a_missing_or_empty_advisory_directory(tmp_path: Path) -> None:
    with pytest.raises(osv.AdvisoryError):
        osv.AdvisoryDB(tmp_path / "nowhere")
    (tmp_path / "empty" / "somepkg").mkdir(parents=True)
    with pytest.raises(osv.AdvisoryError):
        osv.AdvisoryDB(tmp_path / "empty")


def audit(*args: str) -> int:
    return int(osv.main(["audit", *args]))


@needs_snapshot
def test_gate_fails_on_a_known_vulnerable_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "vulnerable.txt"
    lock.write_text(VULNERABLE_LOCK, encoding="utf-8")
    assert audit("--advisories", str(SNAPSHOT), "-r", str(lock)) == 1
    out = capsys.readouterr().out
    assert "requests==2.19.0: PYSEC-2018-28 (fixed in: 2.20.0)" in out


@needs_snapshot
def test_gate_passes_on_the_project_locks(capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for lock in LOCKS for a in ("-r", str(REPO / lock))]
    code = audit("--advisories", str(SNAPSHOT), *args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count(": ok (0 known vulnerabilities)") == len(LOCKS)


def test_gate_fails_on_an_empty_advisory_directory(tmp_path: Path) -> None:
    (tmp_path / "vulns").mkdir()
    assert audit("--advisories", str(tmp_path / "vulns"), "-r", str(REPO / LOCKS[0])) == 2
    assert audit("--advisories", str(tmp_path / "absent"), "-r", str(REPO / LOCKS[0])) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pip_audit_strict_fails_when_the_service_is_down() -> None:
    dead = f"http://127.0.0.1:{_free_port()}/v1/query"
    assert audit("--osv-url", dead, "--no-canary", "-r", str(REPO / LOCKS[0])) != 0
    assert audit("--osv-url", dead, "-r", str(REPO / LOCKS[0])) == 2  # the self-test catches it first


@pytest.fixture
def blind_server() -> Iterator[str]:
    """An endpoint that answers "no vulnerabilities" to everything: reachable, but without data."""

    class Blind(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Blind)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def test_gate_never_trusts_a_service_that_finds_nothing(blind_server: str, tmp_path: Path) -> None:
    lock = tmp_path / "vulnerable.txt"
    lock.write_text(VULNERABLE_LOCK, encoding="utf-8")
    assert audit("--osv-url", blind_server, "-r", str(lock)) == 2


@pytest.mark.skipif(
    os.environ.get("GITHUB_ACTIONS") != "true",
    reason="live OSV service: on GitHub only (ci.yml's tests job, pytest-all; or `make audit-canary`)",
)
def test_live_canary_flags_a_known_vulnerable_pin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On GitHub `make audit` queries api.osv.dev: the same canary must be flagged there, or a live service
    that answers "nothing" (or a pip-audit that cannot reach it) would pass every lock unnoticed."""
    lock = tmp_path / "vulnerable.txt"
    lock.write_text(VULNERABLE_LOCK, encoding="utf-8")
    assert audit("--live", "-r", str(lock)) == 1
    assert "requests==2.19.0: PYSEC-2018-28" in capsys.readouterr().out
