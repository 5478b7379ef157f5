"""Stand-in Lambda handlers for the gateway's worker-process tests (loaded by name in the worker processes)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

_in_flight = 0  # invocations running in this process right now (an execution environment runs one at a time)
_served = 0


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers with what it was asked, which process answered and how many invocations it was running."""
    global _in_flight, _served  # noqa: PLW0603 - per execution environment, on purpose
    _in_flight += 1
    try:
        query = event.get("queryStringParameters") or {}
        delay = float(query.get("sleep", "0"))
        if delay:
            time.sleep(delay)
        if query.get("crash"):
            os._exit(3)  # the runtime process dies mid-invocation
        if query.get("raise"):
            raise RuntimeError("injected")
        _served += 1
        body = {
            "path": event["path"],
            "query": query,
            "request_id": event["requestContext"]["requestId"],
            "api_key_id": event["requestContext"]["identity"]["apiKeyId"],
            "pid": os.getpid(),
            "in_flight": _in_flight,
            "served": _served,
        }
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
    finally:
        _in_flight -= 1


_OVERHEAD = len(json.dumps({"statusCode": 200, "headers": {}, "body": ""}, ensure_ascii=False).encode())


def sized(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A response whose JSON payload, as the runtime serialises it, is exactly ``?bytes=N`` bytes long."""
    total = int((event.get("queryStringParameters") or {})["bytes"])
    # "é" is 2 bytes in UTF-8 and 1 character: the limit counts bytes of the serialised payload.
    body = "é" * ((total - _OVERHEAD) // 2) + "x" * ((total - _OVERHEAD) % 2)
    return {"statusCode": 200, "headers": {}, "body": body}
