"""One PostgreSQL connection per execution environment, reused across warm invocations.

- IAM mode: the password is a short-lived token from ``generate_db_auth_token`` (valid 15 minutes), renewed
  before it expires; TLS is always verify-full.
- Password mode: from ``RAMPART_DB_PASSWORD`` or a Secrets Manager secret (re-read after a failed login, so a
  rotated password is picked up without a restart).
- A dropped connection is re-opened once and the work retried once; anything else that makes the database
  unusable becomes :class:`DatabaseUnavailableError`, which the handlers turn into a retry (ingest) or a 503 (API).

Connections are per thread: a Lambda execution environment has one thread, the local gateway has one per
request worker, and psycopg2 connections must not be shared by concurrent callers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from rampart.db.settings import DatabaseSettings
from rampart.secrets import read_secret

T = TypeVar("T")

# Tokens are valid for 15 minutes; renew well before that so a connect never races the expiry.
IAM_TOKEN_RENEW_AFTER_S = 10 * 60


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached or cannot serve right now (a transient condition)."""


class Database:
    def __init__(
        self,
        settings: DatabaseSettings,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
        aws_client_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.read_only = read_only
        self._clock = clock
        self._aws_client_factory = aws_client_factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_at = 0.0
        self._secret: str | None = None

    # -- credentials -----------------------------------------------------------------------------------------
    def _client(self, service: str) -> Any:
        if self._aws_client_factory is not None:
            return self._aws_client_factory(service)
        import boto3  # noqa: PLC0415 - the Lambda runtime provides boto3; import it only when IAM/secrets are used

        return boto3.client(service, region_name=self.settings.region)  # type: ignore[call-overload]

    def _password(self) -> str:
        s = self.settings
        with self._lock:
            if s.auth == "iam":
                now = self._clock()
                if self._token is None or now - self._token_at >= IAM_TOKEN_RENEW_AFTER_S:
                    self._token = self._client("rds").generate_db_auth_token(
                        DBHostname=s.host, Port=s.port, DBUsername=s.user, Region=s.region
                    )
                    self._token_at = now
                return self._token
            if s.password:
                return s.password
            if self._secret is None:
                if s.password_secret_arn is None:  # excluded by DatabaseSettings' validation
                    raise RuntimeError("no password source configured")
                parsed = read_secret(self._client("secretsmanager"), s.password_secret_arn)
                self._secret = str(parsed["password"]) if isinstance(parsed, dict) else parsed
            return self._secret

    def _forget_secret(self) -> None:
        with self._lock:
            self._secret = None
            self._token = None

    # -- connections -----------------------------------------------------------------------------------------
    def connect(self) -> psycopg2.extensions.connection:
        s = self.settings
        options = (
            f"-c statement_timeout={s.statement_timeout_ms} -c idle_in_transaction_session_timeout=60000"
            " -c TimeZone=UTC"
        )
        if self.read_only:
            options += " -c default_transaction_read_only=on"
        try:
            conn = psycopg2.connect(
                host=s.host,
                port=s.port,
                dbname=s.name,
                user=s.user,
                password=self._password(),
                sslmode=s.sslmode,
                sslrootcert=s.sslrootcert,
                connect_timeout=s.connect_timeout_s,
                application_name=s.application_name,
                options=options,
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        except psycopg2.OperationalError as exc:
            self._forget_secret()
            # The driver's message may name hosts or users: keep it out of anything a client sees.
            raise DatabaseUnavailableError("cannot connect to the database") from exc
        conn.autocommit = self.read_only
        return conn

    def _connection(self) -> psycopg2.extensions.connection:
        conn: psycopg2.extensions.connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.connect()
            self._local.conn = conn
        return conn

    def _discard(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and not conn.closed:
            conn.close()

    def close(self) -> None:
        """Close this thread's connection (tests, shutdown)."""
        self._discard()

    def run(self, work: Callable[[psycopg2.extensions.cursor], T]) -> T:
        """Run ``work`` in one transaction; reconnect and retry once when the connection dropped.

        ``work`` must be safe to run twice (every statement in Rampart is: reads, and idempotent inserts).
        """
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    result = work(cur)
                if not conn.autocommit:
                    conn.commit()
                return result
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                dropped = bool(conn.closed)
                if not dropped:
                    try:
                        conn.rollback()
                    except psycopg2.Error:
                        dropped = True
                if dropped:
                    self._discard()
                    if attempt == 1:
                        continue
                raise DatabaseUnavailableError("the database is unavailable") from exc
            except BaseException:
                if not conn.closed:
                    try:
                        conn.rollback()
                    except psycopg2.Error:
                        self._discard()
                raise
        raise AssertionError("unreachable")  # pragma: no cover
