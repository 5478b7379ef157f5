"""The state file a running ``rampart up`` writes, so ``publish``, ``status`` and ``query`` can find it.

Location: ``$RAMPART_STATE_FILE``, else ``<data dir>/state.json`` when a data dir is given, else
``~/.rampart/state.json``. It holds the API key and a read-only database login, so it is written 0600 in a
0700 folder, atomically (write a temporary file, then rename).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_VERSION = 1


class StateError(RuntimeError):
    """No usable state file: nothing is running, or the file is stale or unreadable."""


def default_state_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    if env := os.environ.get("RAMPART_STATE_FILE"):
        return Path(env).expanduser()
    if data_dir is None and (env_dir := os.environ.get("RAMPART_DATA_DIR")):
        data_dir = env_dir
    if data_dir is not None:
        return Path(data_dir).expanduser() / "state.json"
    return Path.home() / ".rampart" / "state.json"


@dataclass
class StackState:
    pid: int
    api_url: str
    api_key: str
    api_key_id: str
    aws_endpoint: str
    region: str
    topic_arn: str
    queue_url: str
    dlq_url: str
    # RAMPART_DB_* of the read-only API role: enough for `status` to count events, nothing more.
    db_env: dict[str, str]
    started_at: str
    children: dict[str, int] = field(default_factory=dict)
    postgres_pid: int | None = None
    # The stack's log folder: `status` reads the SLIs there (gateway access log, the ingest's EMF lines).
    logs_dir: str | None = None
    temp_dirs: list[str] = field(default_factory=list)
    version: int = STATE_VERSION
    # The stack's `name`: `rampart keys` finds its usage plans and client secrets by it.
    stack_name: str = "rampart-local"

    def aws_env(self) -> dict[str, str]:
        return aws_client_env(self.aws_endpoint, self.region)


def aws_client_env(endpoint: str, region: str) -> dict[str, str]:
    """What a process needs so that plain ``boto3.client(...)`` talks to the emulator (never to AWS)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # Dummy credentials: moto accepts any; real ones must never reach the emulator.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # dummy credentials for the loopback emulator  # nosec B105
        "AWS_SESSION_TOKEN": "testing",  # dummy credentials for the loopback emulator  # nosec B105
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped by its parent) does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True  # no /proc (macOS): trust kill()
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def write_state(path: Path, state: StackState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".state-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(state), fh, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_state(path: Path) -> StackState:
    """The state of a running ``rampart up``, or :class:`StateError` saying why there is none."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(f"no running `rampart up` found (no state file at {path})") from None
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read the state file {path}: {type(exc).__name__}") from None
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        raise StateError(f"the state file {path} is from another version of rampart; restart `rampart up`")
    try:
        state = StackState(**raw)
    except TypeError:
        raise StateError(f"the state file {path} is malformed; restart `rampart up`") from None
    if not pid_alive(state.pid):
        raise StateError(f"no running `rampart up` found (the state file {path} is stale)")
    return state


def remove_state(path: Path, pid: int) -> None:
    """Remove the state file if it is still ours (another `up` may have replaced it)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
