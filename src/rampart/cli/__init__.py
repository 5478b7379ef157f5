"""``rampart``: run the whole system on this machine, publish to it, look at it, query it; migrate a database;
issue client API keys.

Every option has an environment variable equivalent (shown in ``--help``). ``up`` writes a state file that
``publish``, ``status`` and ``query`` read to find the running stack. Mistakes get one clear line on stderr
and a non-zero exit, never a stack trace (``RAMPART_DEBUG=1`` shows traces of unexpected errors).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from rampart.cli import demo, dlq, keys, migrate, publish, query, status, up
from rampart.cli.common import EXIT_USAGE, CliError, fail

COMMAND_GROUPS = (migrate, up, publish, status, query, dlq, keys, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rampart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except argparse.ArgumentTypeError as exc:  # a bad RAMPART_* default
        fail(f"invalid environment setting: {exc}", EXIT_USAGE)
    args = parser.parse_args(argv)
    from rampart.client import RampartApiError, RampartConnectionError  # noqa: PLC0415
    from rampart.db.settings import SettingsError  # noqa: PLC0415
    from rampart.local.postgres import PostgresNotFoundError  # noqa: PLC0415
    from rampart.local.stack import StackError  # noqa: PLC0415
    from rampart.local.state import StateError  # noqa: PLC0415

    known: tuple[type[BaseException], ...] = (
        StateError, StackError, RampartApiError, RampartConnectionError, SettingsError, PostgresNotFoundError,
    )  # fmt: skip
    try:
        return int(args.func(args))
    except CliError as exc:
        fail(str(exc), exc.code)
    except known as exc:
        fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("RAMPART_DEBUG"):
            raise
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        if isinstance(exc, BotoCoreError | ClientError):
            fail(
                f"the AWS emulator did not answer as expected ({type(exc).__name__}: {exc}); is `rampart up` "
                "still running?"
            )
        fail(f"unexpected {type(exc).__name__}: {exc} (RAMPART_DEBUG=1 shows the trace)")
