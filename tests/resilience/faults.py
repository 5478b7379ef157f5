"""Fault injection for the resilience tests: a wrapper around the REAL ingest handler.

``crash_after_store`` lets the real handler store the batch, then crashes the invocation once per execution
environment, before the event source mapping can delete anything: the worst moment to die (the work is done,
the acknowledgement is lost). SQS must redeliver the batch after the visibility timeout, and the idempotent
insert must store nothing twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rampart.ingest.handler import lambda_handler as real_handler

_crashed = False


def crash_after_store(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _crashed  # noqa: PLW0603 - once per execution environment
    result = real_handler(event, context)
    if not _crashed and event.get("Records"):
        _crashed = True
        marker = os.environ.get("RAMPART_TEST_CRASH_MARKER")
        if marker:
            with Path(marker).open("a", encoding="utf-8") as f:
                f.write(f"{len(event['Records'])}\n")
        raise RuntimeError("injected crash after the batch was stored")
    return result
