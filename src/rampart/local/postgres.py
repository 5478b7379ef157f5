"""An embedded PostgreSQL for tests and the local stack: TLS with a generated CA, scram-sha-256, our roles.

It finds server binaries (``RAMPART_PG_BINDIR``, PATH, ``pg_config --bindir``, the usual install folders);
where there are none it falls back to the ``pgserver`` wheel, or says exactly what to install. When started as
root it runs the server as an unprivileged OS user, as PostgreSQL requires. ``stop()`` leaves no process and
no temporary folder behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess  # runs fixed local binaries only, never a shell  # nosec B404
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg2

from rampart.db import migrate

APP_ROLES = ("rampart_migrator", "rampart_ingest", "rampart_api")
# No statement text with values in the log: psycopg2 writes every value (event payloads) into the statement text.
# The RDS parameter group (iac/modules/database/main.tf) sets the same; tests/integration/test_database_logs.py
# proves the log stays clean and that the two agree. (log_statement stays off here, unlike RDS's "ddl": locally
# the bootstrap's ALTER ROLE ... PASSWORD is DDL.)
NO_VALUES_IN_LOGS = {
    "log_min_duration_statement": "-1",
    "log_min_error_statement": "panic",
    "log_error_verbosity": "terse",
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
}
ADMIN_USER = "rampart_admin"
DB_NAME = "rampart"


class PostgresNotFoundError(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _candidate_bindirs() -> list[Path]:
    dirs: list[Path] = []
    if env := os.environ.get("RAMPART_PG_BINDIR"):
        dirs.append(Path(env))
    if initdb := shutil.which("initdb"):
        dirs.append(Path(initdb).resolve().parent)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(  # noqa: S603 - fixed argv, no shell  # nosec B603
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            dirs.append(Path(out.stdout.strip()))
    patterns = [
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/usr/local/pgsql/bin",
        "/opt/homebrew/opt/postgresql*/bin",
        "/usr/local/opt/postgresql*/bin",
    ]
    for pattern in patterns:
        dirs.extend(Path(p) for p in sorted(glob.glob(pattern), reverse=True))
    return dirs


def find_bindir() -> Path:
    """Return a folder holding initdb and postgres, preferring the newest."""
    for d in _candidate_bindirs():
        if (d / "initdb").exists() and (d / "postgres").exists() and (d / "pg_ctl").exists():
            return d
    try:
        import pgserver  # noqa: PLC0415 - optional fallback

        d = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (d / "initdb").exists():
            return d
    except ImportError:
        pass
    raise PostgresNotFoundError(
        "No PostgreSQL server binaries found (looked in $RAMPART_PG_BINDIR, PATH, `pg_config --bindir`, "
        "/usr/lib/postgresql/*/bin, /usr/pgsql-*/bin). Install them, e.g. `apt-get install postgresql` "
        "(Debian/Ubuntu), `brew install postgresql@16` (macOS), or `pip install pgserver` into .venv."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _make_tls(dirpath: Path) -> tuple[Path, Path, Path]:
    """A CA generated for this run, and a server certificate for localhost/127.0.0.1 signed by it."""
    import ipaddress  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415 - dev-only dependency
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rampart local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = dirpath / "ca.crt", dirpath / "server.crt", dirpath / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


@dataclass
class EmbeddedPostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with TLS, scram-sha-256, migrations and roles applied."""

    data_dir: Path | None = None
    port: int | None = None
    fsync: bool = False
    log: bool = False
    passwords: dict[str, str] = field(default_factory=dict)
    _root: Path | None = field(default=None, init=False, repr=False)
    _owns_root: bool = field(default=False, init=False, repr=False)
    _bindir: Path | None = field(default=None, init=False, repr=False)
    _run_as: str | None = field(default=None, init=False, repr=False)
    ca_path: Path = field(default=Path(), init=False)

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> EmbeddedPostgres:
        self._bindir = find_bindir()
        if self.data_dir is None:
            self._root = Path(tempfile.mkdtemp(prefix="rampart-pg-"))
            self._owns_root = True
        else:
            self._root = Path(self.data_dir).resolve()
            self._root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self._run_as = self._server_user()
        try:
            self._init_and_start()
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        return self

    def describe(self) -> dict[str, object]:
        """What another process needs to use this running server (:meth:`attach`). It holds the roles' passwords:
        whoever writes it down keeps it private (``make mutation`` writes it, mode 0600, in its scratch folder)."""
        return {"root": str(self._root), "port": self.port, "passwords": self.passwords, "ca_path": str(self.ca_path)}

    @classmethod
    def attach(cls, info: dict[str, object]) -> EmbeddedPostgres:
        """A handle on a server another process started and owns (:meth:`describe`): it is started again if it is
        down (a run that paused it ended early); ``pause``/``resume`` work; its owner stops it."""
        server = cls(port=int(str(info["port"])), passwords=dict(info["passwords"]))  # type: ignore[call-overload]
        server._root, server.ca_path = Path(str(info["root"])), Path(str(info["ca_path"]))
        server._bindir, server._run_as = find_bindir(), server._server_user()
        if not server.is_running():
            server.resume()
        return server

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pgdata(self) -> Path:
        if self._root is None:
            raise RuntimeError("internal error: self._root is not set")
        return self._root / "pgdata"

    def _server_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "pgserver", "nobody"):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                return name
        raise PostgresNotFoundError("running as root and no unprivileged 'postgres' user exists")

    def _run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if self._run_as:
            argv = ["runuser", "-u", self._run_as, "--", *argv]
        return subprocess.run(  # noqa: S603 - argv built from fixed binaries and our own paths  # nosec B603
            argv, capture_output=True, text=True, check=False, timeout=timeout
        )

    def _chown(self, path: Path) -> None:
        if self._run_as:
            pw = pwd.getpwnam(self._run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _init_and_start(self) -> None:
        if self._root is None or self._bindir is None:
            raise RuntimeError("internal error: the server was not prepared")
        root = self._root
        root.chmod(0o755)
        self._chown(root)
        fresh = not (self.pgdata / "PG_VERSION").exists()
        for role in (ADMIN_USER, *APP_ROLES):
            self.passwords.setdefault(role, secrets.token_urlsafe(24))
        secrets_file = root / "passwords"
        if fresh:
            pwfile = root / "pwfile"
            pwfile.write_text(self.passwords[ADMIN_USER] + "\n", encoding="utf-8")
            pwfile.chmod(0o600)
            self._chown(pwfile)
            res = self._run(
                [
                    str(self._bindir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    ADMIN_USER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                timeout=120,
            )
            pwfile.unlink()
            if res.returncode != 0:
                raise RuntimeError(f"initdb failed: {res.stderr.strip()[-2000:]}")
            lines = [f"{k}={v}" for k, v in self.passwords.items()]
            secrets_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
            secrets_file.chmod(0o600)
        else:
            # A persistent data dir (rampart up --data-dir): reuse the passwords it was created with.
            for line in secrets_file.read_text(encoding="utf-8").splitlines():
                k, _, v = line.partition("=")
                self.passwords[k] = v
        tls_dir = root / "tls"
        tls_dir.mkdir(exist_ok=True)
        self.ca_path, cert, key = _make_tls(tls_dir)
        self.ca_path.chmod(0o644)
        tls_dir.chmod(0o755)
        for p in (cert, key):
            self._chown(p)
        (self.pgdata / "pg_hba.conf").write_text(
            "# Rampart embedded PostgreSQL: TLS only, scram-sha-256 only, loopback only.\n"
            "local   all  all                 scram-sha-256\n"
            "hostssl all  all  127.0.0.1/32   scram-sha-256\n",
            encoding="utf-8",
        )
        self._chown(self.pgdata / "pg_hba.conf")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{root}'",
            "ssl": "on",
            "ssl_cert_file": f"'{cert}'",
            "ssl_key_file": f"'{key}'",
            "ssl_min_protocol_version": "'TLSv1.2'",
            "password_encryption": "'scram-sha-256'",  # an algorithm name, not a password  # nosec B105
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            "max_connections": "200",
            "shared_buffers": "'128MB'",
            "log_min_messages": "'warning'",
            **NO_VALUES_IN_LOGS,
        }
        (self.pgdata / "postgresql.auto.conf").write_text(
            "".join(f"{k} = {v}\n" for k, v in conf.items()), encoding="utf-8"
        )
        self._chown(self.pgdata / "postgresql.auto.conf")
        logfile = root / "postgres.log"
        logfile.touch()
        self._chown(logfile)
        self._pg_ctl_start("start")

    def _pg_ctl_start(self, what: str) -> None:
        """Start the server and wait until it accepts connections; the log's tail says why when it does not."""
        if self._bindir is None or self._root is None:
            raise RuntimeError("internal error: the server was not prepared")
        logfile = self._root / "postgres.log"
        argv = [str(self._bindir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(logfile), "-w", "-t", "60", "start"]
        res = self._run(argv, timeout=90)
        if res.returncode != 0:
            tail = logfile.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not {what}: {res.stderr.strip()} {tail}")

    def _bootstrap(self) -> None:
        conn = psycopg2.connect(self.dsn(ADMIN_USER, dbname="postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                if cur.fetchone() is None:
                    cur.execute("CREATE DATABASE rampart")
        finally:
            conn.close()
        conn = psycopg2.connect(self.dsn(ADMIN_USER))
        try:
            migrate.bootstrap_roles(conn, {r: self.passwords[r] for r in APP_ROLES})
            migrate.apply_migrations(conn)
        finally:
            conn.close()

    def is_running(self) -> bool:
        if self._bindir is None or self._root is None or not self.pgdata.exists():
            return False
        res = self._run([str(self._bindir / "pg_ctl"), "-D", str(self.pgdata), "status"], timeout=30)
        return res.returncode == 0

    def pause(self) -> None:
        """Stop the server but keep its data (fault injection: the database goes away)."""
        if self._bindir is None:
            raise RuntimeError("internal error: self._bindir is not set")
        self._run([str(self._bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])

    def resume(self) -> None:
        """Start the server again on the same port and data."""
        self._pg_ctl_start("restart")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the temporary folder we created."""
        if self._bindir is not None and self._root is not None and (self.pgdata / "postmaster.pid").exists():
            self._run([str(self._bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
            deadline = time.monotonic() + 30
            while (self.pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._owns_root and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    @property
    def log_path(self) -> Path:
        """The server's log file (everything PostgreSQL writes to stderr)."""
        if self._root is None:
            raise RuntimeError("internal error: self._root is not set")
        return self._root / "postgres.log"

    # -- connection details ------------------------------------------------------------------------------
    def dsn(self, user: str, dbname: str = DB_NAME) -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} "
            f"password={self.passwords[user]} sslmode=verify-full sslrootcert={self.ca_path} "
            "application_name=rampart-local connect_timeout=5"
        )

    def env(self, user: str) -> dict[str, str]:
        """The RAMPART_DB_* environment a handler needs to log in as ``user`` (password mode, verify-full)."""
        return {
            "RAMPART_DB_HOST": "localhost",
            "RAMPART_DB_PORT": str(self.port),
            "RAMPART_DB_NAME": DB_NAME,
            "RAMPART_DB_USER": user,
            "RAMPART_DB_AUTH": "password",
            "RAMPART_DB_PASSWORD": self.passwords[user],
            "RAMPART_DB_SSLMODE": "verify-full",
            "RAMPART_DB_SSLROOTCERT": str(self.ca_path),
        }
