"""What every command group shares: errors, output, argument types, the state file."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import decimal
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any, NoReturn

EXIT_USAGE = 2


class CliError(Exception):
    """A user mistake or an unusable environment: printed as one line, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# -- small helpers -----------------------------------------------------------------------------------------------------
def env_or(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ProgressBar:
    """A plain text bar on stderr: redrawn in place on a terminal, a line per quarter otherwise."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None, width: int = 30) -> None:
        self.total, self.label, self.width = max(1, total), label, width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_draw = 0.0
        self._last_quarter = -1
        self.done = 0

    def update(self, done: int, _total: int | None = None) -> None:
        self.done = min(done, self.total)
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self.stream.write("\r" + self._line())
                self.stream.flush()
                self._last_draw = now
        else:
            quarter = self.done * 4 // self.total
            if quarter != self._last_quarter:
                self._last_quarter = quarter
                self.stream.write(self._line() + "\n")
                self.stream.flush()

    def _line(self) -> str:
        filled = self.width * self.done // self.total
        return f"    [{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total} {self.label}"

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def dumps_exact(value: Any, *, sort_keys: bool = False, indent: int | None = None) -> str:
    """JSON text for ``value`` (the output of :func:`jsonable`) with every Decimal written exactly as it is.

    The client reads numbers as Decimal so nothing is lost to binary floats; the standard encoder cannot write a
    Decimal as a number, so this one does: a finite Decimal is written in its own digits (``0.1`` stays ``0.1``,
    ``1E+400`` stays ``1E+400``), everything else as ``json.dumps`` would.
    """
    pad = "" if indent is None else "\n"

    def dump(item: Any, depth: int) -> str:
        inner, outer = pad + " " * ((indent or 0) * (depth + 1)), pad + " " * ((indent or 0) * depth)
        item_sep = "," if indent is not None else ", "
        if isinstance(item, decimal.Decimal) and item.is_finite():
            return str(item)
        if isinstance(item, dict):
            if not item:
                return "{}"
            keys = sorted(item) if sort_keys else list(item)
            parts = [f"{json.dumps(str(k))}: {dump(item[k], depth + 1)}" for k in keys]
            return "{" + inner + (item_sep + inner).join(parts) + outer + "}"
        if isinstance(item, list | tuple):
            if not item:
                return "[]"
            parts = [dump(v, depth + 1) for v in item]
            return "[" + inner + (item_sep + inner).join(parts) + outer + "]"
        return json.dumps(item)

    return dump(value, 0)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535; 0 picks a free one)")
    return value


def resolve_state_path(args: argparse.Namespace) -> Path:
    from rampart.local.state import default_state_path  # noqa: PLC0415

    if getattr(args, "state_file", None):
        return Path(args.state_file).expanduser()
    return default_state_path(getattr(args, "data_dir", None))


def add_state_file_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-file",
        default=None,
        help="state file of the running `rampart up` (env RAMPART_STATE_FILE; default "
        "<data dir>/state.json or ~/.rampart/state.json)",
    )
    p.add_argument("--data-dir", default=env_or("RAMPART_DATA_DIR"), help=argparse.SUPPRESS)


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"rampart: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)
