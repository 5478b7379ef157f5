"""Reading a Secrets Manager secret that is either plain text or a JSON object (both handlers use it)."""

from __future__ import annotations

import json
from typing import Any


def read_secret(client: Any, secret_id: str) -> str | dict[str, Any]:
    """The secret's value: a dict when it holds a JSON object, otherwise its text."""
    return parse_secret_text(client.get_secret_value(SecretId=secret_id)["SecretString"])


def parse_secret_text(text: str) -> str | dict[str, Any]:
    """A secret string: a dict when it holds a JSON object, otherwise the text itself."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return str(text)
    return parsed if isinstance(parsed, dict) else str(parsed)
