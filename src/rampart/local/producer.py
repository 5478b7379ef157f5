"""What a producer does: build realistic events and publish them to the SNS topic."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

_SOURCES: dict[str, list[str]] = {
    "billing": ["invoice.created", "invoice.paid", "payment.failed", "refund.issued"],
    "auth": ["user.login", "user.logout", "mfa.challenge", "password.reset"],
    "inventory": ["stock.adjusted", "item.created", "item.discontinued"],
    "shipping": ["shipment.created", "shipment.delivered", "label.printed"],
}
_CURRENCIES = ["EUR", "USD", "GBP", "CHF"]
_COUNTRIES = ["DE", "FR", "NL", "SE", "US", "GB", "ES", "IT"]


def sample_event(rng: random.Random, occurred_at: dt.datetime | None = None) -> dict[str, Any]:
    source = rng.choice(sorted(_SOURCES))
    event_type = rng.choice(_SOURCES[source])
    payload: dict[str, Any] = {"tenant": f"t-{rng.randint(1, 40):03d}", "country": rng.choice(_COUNTRIES)}
    if source == "billing":
        payload |= {
            "amount_cents": rng.randint(100, 250_000),
            "currency": rng.choice(_CURRENCIES),
            "invoice": f"INV-{rng.randint(10_000, 99_999)}",
        }
    elif source == "auth":
        payload |= {
            "user": f"u-{rng.randint(1, 5000)}",
            "method": rng.choice(["password", "sso", "passkey"]),
            "success": rng.random() > 0.05,
        }
    elif source == "inventory":
        payload |= {
            "sku": f"SKU-{rng.randint(1000, 9999)}",
            "delta": rng.randint(-50, 200),
            "warehouse": rng.choice(["ams-1", "fra-2", "sto-1"]),
        }
    else:
        payload |= {
            "shipment": f"SHP-{rng.randint(100_000, 999_999)}",
            "carrier": rng.choice(["dhl", "ups", "postnl"]),
            "parcels": rng.randint(1, 6),
        }
    when = occurred_at or dt.datetime.now(dt.UTC)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "source": source,
        "type": event_type,
        "occurred_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "payload": payload,
    }


def sample_events(count: int, seed: int | None = None, backdate: dt.timedelta | None = None) -> list[str]:
    """``count`` events as JSON lines; with ``backdate``, spread evenly over that much of the past."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not security  # nosec B311
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(count):
        when = now - backdate * (1 - i / max(1, count)) if backdate else None
        out.append(json.dumps(sample_event(rng, when), separators=(",", ":")))
    return out


@dataclass
class PublishResult:
    sent: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (index, reason)
    message_ids: list[str] = field(default_factory=list)


def publish(
    sns: Any,
    topic_arn: str,
    bodies: Sequence[str],
    rate: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    indexes: Iterable[int] | None = None,
) -> PublishResult:
    """Publish ``bodies`` in batches of 10 (SNS PublishBatch), at most ``rate`` messages per second."""
    result = PublishResult()
    labels = list(indexes) if indexes is not None else list(range(len(bodies)))
    started = time.monotonic()
    step = 10 if not rate or rate >= 10 else 1
    for start in range(0, len(bodies), step):
        if rate:
            # Pace: message number `start` is due at start/rate seconds after the beginning.
            delay = start / rate - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
        chunk = bodies[start : start + step]
        entries = [{"Id": str(i), "Message": body} for i, body in enumerate(chunk)]
        try:
            answer = sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
        except Exception as exc:  # noqa: BLE001 - report the batch failed and go on with the rest
            result.failed.extend((labels[start + i], type(exc).__name__) for i in range(len(chunk)))
        else:
            for ok in answer.get("Successful", []):
                result.sent += 1
                result.message_ids.append(str(ok.get("MessageId", "")))
            for bad in answer.get("Failed", []):
                result.failed.append((labels[start + int(bad["Id"])], str(bad.get("Code", "error"))))
        if on_progress:
            on_progress(min(start + step, len(bodies)), len(bodies))
    return result
