"""``rampart migrate``: create roles and schema, apply migrations to a database (RAMPART_DB_* as an admin)."""

from __future__ import annotations

import argparse
from typing import Any

from rampart.cli.common import CliError, say


def cmd_migrate(args: argparse.Namespace) -> int:
    from rampart.db import migrate  # noqa: PLC0415
    from rampart.db.connection import Database, DatabaseUnavailableError  # noqa: PLC0415
    from rampart.db.settings import DatabaseSettings  # noqa: PLC0415

    settings = DatabaseSettings.from_env(application_name="rampart-migrate")
    say(
        f"==> [migrate] connecting to {settings.host}:{settings.port}/{settings.name} as {settings.user} "
        f"(auth {settings.auth}, sslmode {settings.sslmode})"
    )
    try:
        conn = Database(settings).connect()
    except DatabaseUnavailableError:
        raise CliError(
            f"cannot connect to {settings.host}:{settings.port}/{settings.name} as {settings.user}; "
            "check RAMPART_DB_* and that the server is up"
        ) from None
    try:
        if not args.skip_roles:
            say("==> [migrate] ensuring roles and schema (roles.sql)")
            migrate.bootstrap_roles(conn)
        applied = migrate.apply_migrations(conn, progress=lambda m: say(f"    {m}"))
    finally:
        conn.close()
    say(f"==> [migrate] done: {len(applied)} migration(s) applied now, schema up to date")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("migrate", help="create roles and schema, apply migrations (RAMPART_DB_* as an admin)")
    p.add_argument("--skip-roles", action="store_true", help="only apply migrations (roles already exist)")
    p.set_defaults(func=cmd_migrate)
