"""Response models of the API (they also generate the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EventOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    source: str
    type: str
    occurred_at: dt.datetime
    received_at: dt.datetime
    payload: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(
        description=(
            "Pass as `cursor` to get the next page; null on the last page. A page can hold fewer than `limit` items "
            "and still have a next page: it ends early when it reaches the per-page size budget."
        )
    )


class StatsPoint(BaseModel):
    bucket_start: dt.datetime
    type: str
    events: int


class Stats(BaseModel):
    bucket: Literal["hour", "day"]
    since: dt.datetime
    until: dt.datetime
    series: list[StatsPoint]


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str | None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail


class GatewayMessage(BaseModel):
    """What API Gateway itself answers (403 without a valid key, 429 when throttled)."""

    message: str
