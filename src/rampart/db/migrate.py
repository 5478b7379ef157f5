"""The migration runner: ordered, idempotent, recorded in a table, serialised with an advisory lock.

Migrations are the ``NNNN_name.sql`` files beside this module, applied in order, each in its own
transaction together with its row in ``rampart.schema_migrations``. An applied migration whose file changed
is an error (its checksum no longer matches), never a silent re-run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from psycopg2 import sql

# pg_advisory_lock key: the ASCII of "rampart!" as a signed 64-bit integer. Any constant works; this one is ours.
ADVISORY_LOCK_KEY = 0x72616D7061727421
MIGRATOR_ROLE = "rampart_migrator"
_SET_ROLE = sql.SQL("SET ROLE {}").format(sql.Identifier(MIGRATOR_ROLE))
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


class MigrationError(RuntimeError):
    """A migration cannot be applied safely."""


def load_migrations() -> list[Migration]:
    folder = resources.files("rampart.db") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(m.group(1), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions: {versions}")
    return found


def bootstrap_roles(conn: Any, passwords: Mapping[str, str] | None = None) -> None:
    """Create the roles and the schema (administrator only). ``passwords`` is for local password auth."""
    roles_sql = (resources.files("rampart.db") / "roles.sql").read_text(encoding="utf-8")
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            cur.execute(roles_sql)
            for role, password in (passwords or {}).items():
                cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), (password,))
            conn.commit()
        finally:
            conn.rollback()
            cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            conn.commit()


def apply_migrations(conn: Any, progress: Callable[[str], None] | None = None) -> list[str]:
    """Apply every pending migration as rampart_migrator; return the versions applied now."""
    say = progress or (lambda _msg: None)
    migrations = load_migrations()
    applied_now: list[str] = []
    conn.autocommit = False
    with conn.cursor() as cur:
        # Session-level lock: a second runner waits here until the first has finished.
        cur.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        conn.commit()
        try:
            cur.execute(_SET_ROLE)
            cur.execute(
                "CREATE TABLE IF NOT EXISTS rampart.schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            cur.execute("SELECT version, checksum FROM rampart.schema_migrations")
            done = dict(cur.fetchall())
            conn.commit()
            for mig in migrations:
                if mig.version in done:
                    if done[mig.version] != mig.checksum:
                        raise MigrationError(f"migration {mig.version}_{mig.name} was changed after it was applied")
                    continue
                say(f"applying migration {mig.version}_{mig.name}")
                cur.execute(_SET_ROLE)
                cur.execute(mig.sql)
                cur.execute(
                    "INSERT INTO rampart.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
                conn.commit()
                applied_now.append(mig.version)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.execute("RESET ROLE")
            cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            conn.commit()
    return applied_now
