"""The supervisor of the local twin: PostgreSQL, the AWS emulator, the event source mapping and the gateway.

Each Lambda function runs the way Lambda runs it: in its own process, with its own environment (the ingest
function logs in as ``rampart_ingest`` and knows the DLQ; the API function logs in as ``rampart_api`` and
knows the cursor key). Child environments are built from scratch, never inherited wholesale, so real AWS
credentials or settings of the caller cannot leak into the twin, and every AWS call goes to the emulator.

Children start in their own session (a Ctrl-C in the terminal reaches only the supervisor, which then stops
them in order: the event source mapping first, so it finishes the batch in hand), and each one exits by itself
if the supervisor disappears. ``stop()`` leaves no process and no temporary folder behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess  # runs fixed local binaries only, never a shell  # nosec B404
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rampart import keys
from rampart.keys import UsagePlan
from rampart.local import aws, esm, gateway
from rampart.local.gateway import ApiKey
from rampart.local.postgres import EmbeddedPostgres
from rampart.local.state import aws_client_env, pid_alive

START_TIMEOUT_S = 60.0
_PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")


class StackError(RuntimeError):
    """The local stack could not start (the message says why, in one line where possible)."""


@dataclass
class StackConfig:
    name: str = "rampart-local"
    region: str = aws.DEFAULT_REGION
    api_port: int = 0
    data_dir: Path | None = None
    # Client keys created at start through `rampart keys` logic; each key's tier (usage plan "<name>-<tier>")
    # is its ``tier``, else its client name, with the key's ``plan`` as the tier's limits.
    api_keys: list[ApiKey] = field(default_factory=list)
    stage: str = "local"
    # Event source mapping and queue (iac/modules/pubsub and functions defaults, shortened where it helps).
    batch_size: int = 10
    batching_window_s: float = 0.0
    visibility_timeout_s: int = 30
    max_receive_count: int = 5
    poll_wait_s: int = 1
    ingest_concurrency: int = 2  # ingest execution environments, one process each
    api_concurrency: int = 8  # API execution environments: worker processes of the gateway
    api_max_connections: int = gateway.MAX_CONNECTIONS
    ingest_handler: str = esm.DEFAULT_HANDLER
    api_handler: str = gateway.DEFAULT_HANDLER
    # Extra environment for a function (tests: fault injection, log levels).
    ingest_env: dict[str, str] = field(default_factory=dict)
    api_env: dict[str, str] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None


@dataclass
class _Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0


def _base_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
    # Coverage measurement of the children, when the test run asks for it.
    env |= {k: v for k, v in os.environ.items() if k.startswith(("COV_CORE_", "COVERAGE_"))}
    env |= {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}
    return env


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Stack:
    """``with Stack(StackConfig()) as stack: ...`` -- or ``start()`` / ``stop()``."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        if not self.config.api_keys:
            self.config.api_keys = [ApiKey.generate("local", UsagePlan(), tier=keys.DEFAULT_TIER)]
        self.postgres: EmbeddedPostgres | None = None
        self.resources: aws.PubSubResources | None = None
        self.endpoint = ""
        self.cursor_key = secrets.token_urlsafe(32)
        self._children: dict[str, _Child] = {}
        self._temp_dirs: list[Path] = []
        self._root: Path | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.started_in_s = 0.0
        self._pg_pid: int | None = None
        self._pg_temp: list[Path] = []

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        if self.config.progress:
            self.config.progress(message)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> Stack:
        cfg = self.config
        started = time.monotonic()
        if cfg.api_port and not port_is_free(cfg.api_port):
            raise StackError(f"port {cfg.api_port} on 127.0.0.1 is in use; pick another with --api-port")
        try:
            self._root = self._make_root()
            self._say("starting the AWS emulator (SNS, SQS, KMS) and PostgreSQL")
            emulator = self._child("aws", ["-m", "rampart.local.aws"], _base_env())
            self._spawn(emulator)
            pg_dir = cfg.data_dir / "postgres" if cfg.data_dir else None
            self.postgres = EmbeddedPostgres(data_dir=pg_dir)
            self.postgres.start()
            self._pg_pid = _postmaster_pid(self.postgres.pgdata)
            if pg_dir is None:
                self._pg_temp = [self.postgres.pgdata.parent]
            self.endpoint = str(self._await_ready(emulator)["endpoint"])
            pubsub = aws.PubSubConfig(
                name=cfg.name,
                visibility_timeout_seconds=cfg.visibility_timeout_s,
                max_receive_count=cfg.max_receive_count,
            )
            self.resources = aws.provision(self.endpoint, cfg.region, pubsub)
            self._say(
                f"provisioned {self.resources.topic_arn} -> {self.resources.queue_arn} (DLQ after "
                f"{cfg.max_receive_count} receives)"
            )
            self._provision_api_keys()
            self._say("starting the event source mapping (ingest function) and the API gateway (API function)")
            functions = [self._ingest_child(i) for i in range(1, cfg.ingest_concurrency + 1)]
            functions.append(self._api_child())
            for child in functions:
                self._spawn(child)
            for child in functions:
                self._await_ready(child)
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - started
        return self

    def _provision_api_keys(self) -> None:
        """What iac/modules/api owns (a usage plan per tier, the CMK for key secrets), then the configured keys,
        created through the same code as `rampart keys create`."""
        cfg = self.config
        tiers: dict[str, UsagePlan] = {}
        for key in cfg.api_keys:
            tier = key.tier or key.name
            if tiers.setdefault(tier, key.plan) != key.plan:
                raise StackError(f"two keys of tier {tier!r} ask for different usage plans")
        kms, apigateway = self.client("kms"), self.client("apigateway")
        cmk = kms.create_key(Description=f"{cfg.name} client API key secrets", KeyUsage="ENCRYPT_DECRYPT")
        kms.enable_key_rotation(KeyId=cmk["KeyMetadata"]["KeyId"])
        kms.create_alias(AliasName=keys.kms_alias(cfg.name), TargetKeyId=cmk["KeyMetadata"]["KeyId"])
        for tier, plan in tiers.items():
            apigateway.create_usage_plan(
                name=keys.usage_plan_name(cfg.name, tier),
                description=f"{cfg.name} clients of tier {tier}",
                tags={"rampart:tier": tier, "rampart:stack": cfg.name},
                **plan.to_api(),
            )
        manager = self.key_manager()
        created = []
        for key in cfg.api_keys:
            client_keys = manager.create(key.name, key.tier or key.name, key.value)
            created.append(ApiKey(client_keys.current.id, key.value, key.name, key.plan, key.tier or key.name))
        cfg.api_keys = created
        self._say(f"usage plans {', '.join(sorted(tiers))}; client keys {', '.join(k.name for k in created)}")

    def key_manager(self) -> keys.KeyManager:
        """`rampart keys` bound to this stack's emulator."""
        return keys.KeyManager(self.client("apigateway"), self.client("secretsmanager"), self.config.name)

    def _make_root(self) -> Path:
        if self.config.data_dir is not None:
            root = Path(self.config.data_dir).expanduser().resolve()
            root.mkdir(parents=True, exist_ok=True)
            root.chmod(0o711)  # PostgreSQL's unprivileged user must traverse it to its own folder
        else:
            root = Path(tempfile.mkdtemp(prefix="rampart-stack-"))
            self._temp_dirs.append(root)
        logs = root / "logs"
        logs.mkdir(mode=0o700, exist_ok=True)
        return root

    @property
    def logs_dir(self) -> Path:
        if self._root is None:
            raise RuntimeError("internal error: self._root is not set")
        return self._root / "logs"

    def _child(self, name: str, args: list[str], env: dict[str, str]) -> _Child:
        child = _Child(name, [sys.executable, *args], env, self.logs_dir / f"{name}.log")
        self._children[name] = child
        return child

    def _function_env(self, function_name: str, service: str, db_user: str) -> dict[str, str]:
        if self.postgres is None:
            raise RuntimeError("internal error: self.postgres is not set")
        return (
            _base_env()
            | self.postgres.env(db_user)
            | aws_client_env(self.endpoint, self.config.region)
            | {
                "AWS_LAMBDA_FUNCTION_NAME": function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": "Rampart",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            }
        )

    def _ingest_child(self, index: int) -> _Child:
        """One ingest execution environment: its own process, module globals and database connection."""
        cfg, res = self.config, self.resources
        if res is None:
            raise RuntimeError("internal error: res is not set")
        function_name = f"{cfg.name}-ingest"
        env = self._function_env(function_name, "rampart-ingest", "rampart_ingest")
        env |= {"RAMPART_DLQ_URL": res.dlq_url} | cfg.ingest_env
        args = [
            "-m", "rampart.local.esm",
            "--queue-url", res.queue_url,
            "--queue-arn", res.queue_arn,
            "--region", cfg.region,
            "--handler", cfg.ingest_handler,
            "--function-name", function_name,
            "--batch-size", str(cfg.batch_size),
            "--batching-window", str(cfg.batching_window_s),
            "--poll-wait", str(cfg.poll_wait_s),
            "--concurrency", "1",
        ]  # fmt: skip
        return self._child(f"ingest-{index}", args, env)

    def _api_child(self) -> _Child:
        cfg = self.config
        function_name = f"{cfg.name}-api"
        env = self._function_env(function_name, "rampart-api", "rampart_api")
        env |= {"RAMPART_CURSOR_KEY": self.cursor_key} | cfg.api_env
        args = [
            "-m", "rampart.local.gateway",
            "--port", str(cfg.api_port),
            "--handler", cfg.api_handler,
            "--stage", cfg.stage,
            "--function-name", function_name,
            "--concurrency", str(cfg.api_concurrency),
            "--max-connections", str(cfg.api_max_connections),
            "--stack-name", cfg.name,
            "--keys-endpoint", self.endpoint,
        ]  # fmt: skip
        return self._child("gateway", args, env)

    def _spawn(self, child: _Child) -> None:
        read_fd, write_fd = os.pipe()
        log: TextIO = child.log_path.open("a", encoding="utf-8")
        try:
            child.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell  # nosec B603
                [*child.argv, "--ready-fd", str(write_fd)],
                env=child.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
            log.close()
        child.info = {"_ready_fd": read_fd}

    def _await_ready(self, child: _Child, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        import json  # noqa: PLC0415

        read_fd = child.info.pop("_ready_fd")
        deadline = time.monotonic() + timeout
        buf = b""
        try:
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StackError(f"{child.name} did not start within {timeout:.0f} s; see {child.log_path}")
                ready, _, _ = select.select([read_fd], [], [], min(remaining, 0.5))
                if ready:
                    chunk = os.read(read_fd, 4096)
                    if not chunk:
                        tail = _tail(child.log_path)
                        raise StackError(f"{child.name} exited during start-up:\n{tail}")
                    buf += chunk
        finally:
            os.close(read_fd)
        child.info = dict(json.loads(buf.decode().splitlines()[0]))
        if child.proc is None:
            raise RuntimeError("internal error: child.proc is not set")
        child.info.setdefault("pid", child.proc.pid)
        return child.info

    def stop(self) -> None:
        """Stop everything (idempotent): the functions first (ingest finishes its batch), then AWS and PostgreSQL."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        for child in self._children.values():
            fd = child.info.pop("_ready_fd", None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._terminate_all([n for n in self._children if n != "aws"], grace=30.0)
        # The emulator and PostgreSQL stop side by side: nothing uses them any more.
        emulator = threading.Thread(target=self._terminate_all, args=(["aws"], 10.0), daemon=True)
        emulator.start()
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.stop()
        emulator.join(20)
        for path in self._temp_dirs:
            shutil.rmtree(path, ignore_errors=True)

    def _terminate_all(self, names: list[str], grace: float) -> None:
        procs = [c.proc for n, c in self._children.items() if n in names and c.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def leftovers(self) -> list[str]:
        """What is still there after :meth:`stop` (should be nothing): processes, the server, temporary folders."""
        found = [f"{n} (pid {c.proc.pid})" for n, c in self._children.items() if c.proc and c.proc.poll() is None]
        if self._pg_pid is not None and pid_alive(self._pg_pid):
            found.append(f"postgres (pid {self._pg_pid})")
        found += [str(p) for p in [*self._temp_dirs, *self._pg_temp] if p.exists()]
        return found

    # -- supervision ---------------------------------------------------------------------------------------------------
    def check(self, max_restarts: int = 3) -> list[str]:
        """Restart a crashed function process (as Lambda would start a new environment); report what happened.

        Raises :class:`StackError` when the emulator died (its state is gone) or a function keeps crashing.
        """
        events: list[str] = []
        if self._stopped.is_set():
            return events
        for name, child in list(self._children.items()):
            if child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            if name == "aws":
                raise StackError(f"the AWS emulator exited (code {code}); its queues are gone, restart `rampart up`")
            if child.restarts >= max_restarts:
                raise StackError(f"{name} keeps exiting (code {code}); see {child.log_path}")
            child.restarts += 1
            if name == "gateway":
                child.argv[child.argv.index("--port") + 1] = str(self.api_port)
            events.append(f"{name} exited with code {code}; restarting it ({child.restarts}/{max_restarts})")
            self._spawn(child)
            self._await_ready(child)
        return events

    def restart_function(self, function: str, extra_env: dict[str, str] | None = None) -> None:
        """Replace the processes of ``ingest`` or ``gateway`` (tests: a new environment, e.g. fault injection)."""
        children = [c for n, c in self._children.items() if n == function or n.startswith(function + "-")]
        if not children:
            raise KeyError(function)
        self._terminate_all([c.name for c in children], grace=30.0)
        for child in children:
            child.env = {**child.env, **(extra_env or {})}
            if child.name == "gateway":
                child.argv[child.argv.index("--port") + 1] = str(self.api_port)
            self._spawn(child)
        for child in children:
            self._await_ready(child)

    # -- what callers need -------------------------------------------------------------------------------------------
    @property
    def api_port(self) -> int:
        return int(self._children["gateway"].info["port"])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}{gateway.API_PREFIX}"

    @property
    def api_key(self) -> ApiKey:
        return self.config.api_keys[0]

    def pids(self) -> dict[str, int]:
        return {n: c.proc.pid for n, c in self._children.items() if c.proc is not None}

    @property
    def postgres_pid(self) -> int | None:
        return self._pg_pid

    @property
    def temp_dirs(self) -> list[Path]:
        """The temporary folders of this run (removed by :meth:`stop`), PostgreSQL's included."""
        return [*self._temp_dirs, *self._pg_temp]

    def client(self, service: str) -> Any:
        return aws.client(service, self.endpoint, self.config.region)

    def publish(
        self, bodies: Iterable[str], rate: float | None = None, on_progress: Callable[[int, int], None] | None = None
    ) -> Any:
        from rampart.local.producer import publish  # noqa: PLC0415

        if self.resources is None:
            raise RuntimeError("internal error: self.resources is not set")
        return publish(self.client("sns"), self.resources.topic_arn, list(bodies), rate, on_progress)

    def db_env(self, user: str = "rampart_api") -> dict[str, str]:
        if self.postgres is None:
            raise RuntimeError("internal error: self.postgres is not set")
        return self.postgres.env(user)
