"""The real API handler against the real PostgreSQL, on the read-only role."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from typing import Any

import psycopg2
import pytest

import rampart.api.handler as api_module
import rampart.db.store as store_module
from rampart.api.handler import SECURITY_HEADERS
from rampart.api.models import EventOut, EventPage, Health, Stats
from rampart.api.paging import LAMBDA_RESPONSE_LIMIT, MAX_PAGE_BYTES, escaped_size
from rampart.local.postgres import EmbeddedPostgres
from tests.helpers import FakeContext, api_event

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def seed(
    admin: Any, n: int, source: str = "billing", type_: str = "invoice.paid", start: dt.datetime = T0
) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with admin.cursor() as cur:
        for i, eid in enumerate(ids):
            cur.execute(
                "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload) VALUES (%s,%s,%s,%s,%s)",
                (eid, source, type_, start + dt.timedelta(minutes=i), json.dumps({"i": i})),
            )
    return ids


def call(
    api: Any, path: str, query: dict[str, str] | None = None, **kw: Any
) -> tuple[int, dict[str, Any], dict[str, str]]:
    resp = api.lambda_handler(api_event(path, query, **kw), FakeContext())
    headers = {k: v[0] for k, v in resp.get("multiValueHeaders", {}).items()} | resp.get("headers", {})
    return resp["statusCode"], json.loads(resp["body"]), headers


def assert_error(status: int, body: dict[str, Any], expected: int) -> None:
    assert status == expected, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["request_id"]


def test_list_first_page_and_every_page(api: Any, admin: Any) -> None:
    ids = seed(admin, 23)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "5"} | ({"cursor": cursor} if cursor else {})
        status, body, _ = call(api, "/v1/events", query)
        assert status == 200
        seen += [item["event_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids  # chronological, no duplicate, no gap
    assert pages == 5


def test_filters(api: Any, admin: Any) -> None:
    seed(admin, 3, source="billing")
    shipping = seed(admin, 2, source="shipping", type_="parcel.sent")
    status, body, _ = call(api, "/v1/events", {"source": "shipping"})
    assert status == 200 and [i["event_id"] for i in body["items"]] == shipping
    status, body, _ = call(api, "/v1/events", {"type": "parcel.sent", "source": "billing"})
    assert status == 200 and body["items"] == []
    since = (T0 + dt.timedelta(minutes=1)).isoformat()
    until = (T0 + dt.timedelta(minutes=2)).isoformat()
    status, body, _ = call(api, "/v1/events", {"since": since, "until": until})
    assert status == 200 and len(body["items"]) == 2  # minute 1 of both sources, until is exclusive


def test_responses_match_the_documented_models(api: Any, admin: Any) -> None:
    seed(admin, 3)
    resp = api.lambda_handler(api_event("/v1/events", {"limit": "2"}), FakeContext())
    page = EventPage.model_validate_json(resp["body"])
    assert len(page.items) == 2 and page.next_cursor
    one = api.lambda_handler(api_event(f"/v1/events/{page.items[0].event_id}"), FakeContext())
    assert EventOut.model_validate_json(one["body"]) == page.items[0]
    assert Stats.model_validate_json(api.lambda_handler(api_event("/v1/stats"), FakeContext())["body"])
    assert Health.model_validate_json(api.lambda_handler(api_event("/v1/health"), FakeContext())["body"])


def test_item_shape(api: Any, admin: Any) -> None:
    [eid] = seed(admin, 1)
    status, body, _ = call(api, f"/v1/events/{eid}")
    assert status == 200
    assert set(body) == {"event_id", "source", "type", "occurred_at", "received_at", "payload"}
    assert body["payload"] == {"i": 0}
    assert dt.datetime.fromisoformat(body["occurred_at"]) == T0


def test_get_unknown_is_404_and_malformed_id_is_400(api: Any) -> None:
    assert_error(*call(api, f"/v1/events/{uuid.uuid4()}")[:2], 404)
    assert_error(*call(api, "/v1/events/not-a-uuid")[:2], 400)


def test_unknown_route_is_404(api: Any) -> None:
    assert_error(*call(api, "/v1/nothing")[:2], 404)
    assert_error(*call(api, "/v1/events", method="POST")[:2], 404)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1e3"},
        {"limit": "99999999999999999999999"},
        {"limit": " 5"},
        {"limit": "+5"},
        {"limit": "\uff15"},
        {"source": "Not-Valid"},
        {"type": "a" * 64},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no timezone
        {"until": "0793-11-11T14:05:58+17:39"},  # an offset PostgreSQL cannot represent (found by schemathesis)
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"cursor": "garbage"},
        {"cursor": "x" * 600},
        {"unknown": "1"},
        {"Limit": "5"},
    ],
)
def test_bad_parameters_are_400_with_the_envelope(api: Any, query: dict[str, str]) -> None:
    status, body, _ = call(api, "/v1/events", query)
    assert_error(status, body, 400)


def test_repeated_parameter_is_400(api: Any) -> None:
    status, body, _ = call(api, "/v1/events", multi={"source": ["billing", "shipping"]})
    assert_error(status, body, 400)
    assert body["error"]["code"] == "repeated_parameter"
    assert_error(*call(api, "/v1/events", multi={"limit": ["5", "6"]})[:2], 400)


def test_nul_and_surrogates_in_parameters_are_400(api: Any) -> None:
    assert_error(*call(api, "/v1/events", {"source": "a\x00b"})[:2], 400)
    assert_error(*call(api, "/v1/events", {"source": "a\ud800"})[:2], 400)
    assert_error(*call(api, "/v1/events", {"sour\udcffce": "a"})[:2], 400)
    assert_error(*call(api, "/v1/events/\udcff")[:2], 400)


def test_a_request_body_is_400(api: Any) -> None:
    event = api_event("/v1/events")
    event["body"] = "{" * 10_000
    resp = api.lambda_handler(event, FakeContext())
    assert resp["statusCode"] == 400
    assert json.loads(resp["body"])["error"]["code"] == "unexpected_body"


def test_cursor_replayed_under_other_filters_is_400(api: Any, admin: Any) -> None:
    seed(admin, 5)
    _, body, _ = call(api, "/v1/events", {"limit": "2", "source": "billing"})
    status, err, _ = call(api, "/v1/events", {"limit": "2", "source": "shipping", "cursor": body["next_cursor"]})
    assert_error(status, err, 400)
    assert err["error"]["code"] == "invalid_cursor"


def test_tampered_cursor_is_400(api: Any, admin: Any) -> None:
    seed(admin, 5)
    _, body, _ = call(api, "/v1/events", {"limit": "2"})
    cursor = body["next_cursor"]
    tampered = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    assert_error(*call(api, "/v1/events", {"cursor": tampered})[:2], 400)


SQLI = [
    "' OR '1'='1",
    "billing'; DROP TABLE rampart.events; --",
    "1; SELECT pg_sleep(10)",
    '" OR 1=1 --',
    "billing' UNION SELECT * FROM pg_shadow --",
    "%27%20OR%201%3D1",
]


@pytest.mark.parametrize("payload", SQLI)
@pytest.mark.parametrize("param", ["source", "type", "since", "until", "limit", "cursor"])
def test_sql_injection_in_every_parameter_is_refused(api: Any, admin: Any, param: str, payload: str) -> None:
    seed(admin, 2)
    status, body, _ = call(api, "/v1/events", {param: payload})
    assert status in (200, 400), body
    if status == 400:
        assert_error(status, body, 400)
    else:
        assert body["items"] == []
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM rampart.events")
        assert cur.fetchone() == (2,)


@pytest.mark.parametrize("payload", SQLI)
def test_sql_injection_in_path_and_stats(api: Any, payload: str) -> None:
    assert call(api, f"/v1/events/{payload}")[0] in (400, 404)
    assert_error(*call(api, "/v1/stats", {"bucket": payload})[:2], 400)


def test_stats_counts_per_type_per_hour_and_day(api: Any, admin: Any) -> None:
    seed(admin, 90, type_="invoice.paid")  # 90 minutes from T0: 60 in hour 0, 30 in hour 1
    seed(admin, 3, type_="invoice.sent", start=T0 + dt.timedelta(hours=1))
    window = {"since": T0.isoformat(), "until": (T0 + dt.timedelta(hours=3)).isoformat()}
    status, body, _ = call(api, "/v1/stats", {"bucket": "hour", **window})
    assert status == 200
    series = {(p["bucket_start"][:13], p["type"]): p["events"] for p in body["series"]}
    assert series == {
        ("2026-01-01T00", "invoice.paid"): 60,
        ("2026-01-01T01", "invoice.paid"): 30,
        ("2026-01-01T01", "invoice.sent"): 3,
    }
    status, body, _ = call(api, "/v1/stats", {"bucket": "day", **window})
    assert [(p["type"], p["events"]) for p in body["series"]] == [("invoice.paid", 90), ("invoice.sent", 3)]


def test_stats_default_window_and_bounds(api: Any) -> None:
    status, body, _ = call(api, "/v1/stats")
    assert status == 200 and body["bucket"] == "hour" and body["series"] == []
    assert_error(*call(api, "/v1/stats", {"bucket": "minute"})[:2], 400)
    assert_error(*call(api, "/v1/stats", {"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"})[:2], 400)
    assert_error(*call(api, "/v1/stats", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"})[:2], 400)


def test_health_ok(api: Any) -> None:
    status, body, _ = call(api, "/v1/health")
    assert (status, body) == (200, {"status": "ok", "database": "ok"})


def test_security_headers_on_success_and_error(api: Any) -> None:
    for path in ("/v1/health", "/v1/nothing", "/v1/events/bad"):
        _, _, headers = call(api, path)
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value
        assert headers["Content-Type"].startswith("application/json")
        assert not any(h.lower().startswith("access-control-") for h in headers)


def test_database_down_is_503_with_retry_after_then_recovers(api: Any, pg: EmbeddedPostgres) -> None:
    assert call(api, "/v1/health")[0] == 200
    pg.pause()
    try:
        for path in ("/v1/health", "/v1/events", "/v1/stats"):
            status, body, headers = call(api, path)
            assert_error(status, body, 503)
            assert headers["Retry-After"] == "5"
            text = json.dumps(body)
            for leak in ("psycopg2", "connection", "127.0.0.1", "rampart_api", "Traceback", "SELECT"):
                assert leak not in text
    finally:
        pg.resume()
    assert call(api, "/v1/health")[0] == 200


def test_the_api_role_really_is_read_only(api: Any, pg: EmbeddedPostgres) -> None:
    # Even through the handler's own connection settings, writes are refused.
    call(api, "/v1/health")
    conn = api._store.db.connect()
    try:
        with conn.cursor() as cur:
            # Its sessions ask for read-only themselves ('client'), not only through the role's default ('user').
            cur.execute("SELECT setting, source FROM pg_settings WHERE name = 'default_transaction_read_only'")
            assert cur.fetchone() == ("on", "client")
        with conn.cursor() as cur, pytest.raises(psycopg2.Error):
            cur.execute("DELETE FROM rampart.events")
    finally:
        conn.close()


def test_misconfigured_cursor_key_is_a_500_without_details(
    api: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(admin, 3)
    monkeypatch.setenv("RAMPART_CURSOR_KEY", "short")
    api._keyring = None
    status, body, _ = call(api, "/v1/events", {"limit": "1"})
    assert_error(status, body, 500)
    assert body["error"]["message"] == "internal error"


# -- no 5xx at the ends of the calendar -----------------------------------------------------------------------------
CALENDAR_EDGES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00.000001Z",
    "0001-01-01T13:59:59-14:00",
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "0001-01-01T00:00:00-00:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T10:00:00+14:00",
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "0000-01-01T00:00:00Z",
    "1764000229",
    "infinity",
    "-infinity",
    "epoch",
    "now",
    "2026-01-01",
    "2026-01-01T24:00:00Z",
    "2016-12-31T23:59:60Z",
    "2026-01-01T00:00:00+15:00",
]


@pytest.mark.parametrize("value", CALENDAR_EDGES)
@pytest.mark.parametrize(
    "route_and_params",
    [
        ("/v1/events", {}),
        ("/v1/stats", {"bucket": "hour"}),
        ("/v1/stats", {"bucket": "day"}),
    ],
    ids=["events", "stats-hour", "stats-day"],
)
@pytest.mark.parametrize("name", ["since", "until"])
def test_every_date_parameter_at_the_ends_of_the_calendar_answers_below_500(
    api: Any, admin: Any, route_and_params: tuple[str, dict[str, str]], name: str, value: str
) -> None:
    seed(admin, 1)
    route, params = route_and_params
    status, body, _ = call(api, route, {**params, name: value})
    assert status in (200, 400), body
    if status == 400:
        assert_error(status, body, 400)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"until": "0001-01-01T00:00:00Z"}, 400),  # the report: was a 500
        ({"since": "9999-12-31T23:59:59Z"}, 400),
        ({"since": "9999-12-30T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"}, 200),
        ({"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00:00Z"}, 200),
        ({"until": "0001-01-01T05:00:00Z"}, 200),  # the default window clamped at the first instant
        ({"bucket": "day", "until": "0001-01-01T00:00:00.000001Z"}, 200),
    ],
)
def test_stats_windows_at_the_ends_of_the_calendar(api: Any, query: dict[str, str], expected: int) -> None:
    status, body, _ = call(api, "/v1/stats", query)
    assert status == expected, body
    if status == 200:
        assert body["series"] == []


def test_a_window_with_too_many_points_is_refused_not_served_oversized(
    api: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_STATS_POINTS", 5)
    monkeypatch.setattr(api_module, "MAX_STATS_POINTS", 5)
    for i in range(6):
        seed(admin, 1, type_=f"type.{i}")
    window = {"since": T0.isoformat(), "until": (T0 + dt.timedelta(hours=1)).isoformat()}
    status, body, _ = call(api, "/v1/stats", window)
    assert_error(status, body, 400)
    assert body["error"]["code"] == "window_too_large"


# -- every page within the response limit ---------------------------------------------------------------------------
def test_large_events_page_within_the_budget_and_every_one_is_reached(api: Any, admin: Any) -> None:
    """500 events of ~32 KiB (non-ASCII and quotes, which the Lambda runtime's escaping inflates up to 3x): each
    page ends early, within the per-page budget and far inside Lambda's 6 MB response limit, and following the
    cursors reaches every event exactly once."""
    ids = sorted(str(uuid.uuid4()) for _ in range(500))
    blob = 'é"' * 10_900  # 32,700 bytes of UTF-8 once the quotes are escaped in the payload's JSON text
    with admin.cursor() as cur:
        cur.execute(
            "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)"
            " SELECT id::uuid, 'billing', 'invoice.paid', %s, jsonb_build_object('blob', %s::text, 'n', n)"
            " FROM unnest(%s::text[]) WITH ORDINALITY AS t(id, n)",
            (T0, blob, ids),
        )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "500"} | ({"cursor": cursor} if cursor else {})
        resp = api.lambda_handler(api_event("/v1/events", query), FakeContext())
        assert resp["statusCode"] == 200
        assert escaped_size(resp["body"]) <= MAX_PAGE_BYTES
        assert len(json.dumps(resp)) < LAMBDA_RESPONSE_LIMIT  # the whole invocation response, as the runtime sends it
        body = json.loads(resp["body"])
        seen += [item["event_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert pages > 5  # it did page by size: 500 of these would be ~40 MB escaped in one response


def test_stats_serves_exactly_max_points_and_refuses_one_more(api: Any, admin: Any) -> None:
    """The real bound, written out (not the constant): 20,000 (bucket, type) points are served, one more is refused."""
    with admin.cursor() as cur:
        cur.execute(
            "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)"
            " SELECT gen_random_uuid(), 'billing', 't.' || n, %s, '{}'::jsonb FROM generate_series(1, %s) AS n",
            (T0, 20_000),
        )
    window = {"since": T0.isoformat(), "until": (T0 + dt.timedelta(hours=1)).isoformat()}
    status, body, _ = call(api, "/v1/stats", window)
    assert status == 200
    assert len(body["series"]) == 20_000
    seed(admin, 1, type_="one.more")
    status, body, _ = call(api, "/v1/stats", window)
    assert_error(status, body, 400)
    assert body["error"]["code"] == "window_too_large"


# -- found by mutation testing (docs/mutation.md): each test below failed against a surviving mutant -------------
def test_the_error_names_the_gateways_request_id_else_the_lambdas(api: Any) -> None:
    event = api_event("/v1/nothing")
    context = FakeContext()
    body = json.loads(api.lambda_handler(event, context)["body"])
    assert body["error"]["request_id"] == event["requestContext"]["requestId"]
    del event["requestContext"]["requestId"]
    body = json.loads(api.lambda_handler(event, context)["body"])
    assert body["error"]["request_id"] == context.aws_request_id


def test_a_validation_error_names_the_parameter(api: Any) -> None:
    status, body, _ = call(api, "/v1/events", {"limit": "0"})
    assert_error(status, body, 400)
    assert body["error"]["message"].startswith("limit: ")


def test_at_most_five_unknown_parameters_are_named(api: Any) -> None:
    status, body, _ = call(api, "/v1/events", {f"p{i}": "1" for i in range(7)})
    assert_error(status, body, 400)
    assert body["error"]["message"] == "unknown query parameter(s): p0, p1, p2, p3, p4"


def single_value_map_only(api: Any, query: dict[str, str]) -> Any:
    """The body of a /v1/events answer to a request whose parameters are only in the single-value map."""
    event = api_event("/v1/events", query)
    event["multiValueQueryStringParameters"] = None
    return json.loads(api.lambda_handler(event, FakeContext())["body"])


def test_an_unknown_parameter_is_refused_even_when_only_the_single_value_map_names_it(api: Any) -> None:
    body = single_value_map_only(api, {"unknown": "1"})
    assert body["error"]["code"] == "unknown_parameter"


def test_bad_text_in_any_value_of_a_repeated_parameter_is_refused_as_such(api: Any) -> None:
    # API Gateway puts the last value in the single-value map; the first one is only in the multi-value map.
    status, body, _ = call(api, "/v1/events", {"source": "b"}, multi={"source": ["a\x00", "b"]})
    assert_error(status, body, 400)
    assert body["error"]["message"] == "parameters must be valid UTF-8 text"


@pytest.mark.parametrize("char", [chr(0xD800), chr(0xDFFF)], ids=["D800", "DFFF"])
def test_the_first_and_last_surrogates_are_refused_before_routing(api: Any, char: str) -> None:
    status, body, _ = call(api, "/v1/events", {"source": f"a{char}"})
    assert_error(status, body, 400)
    assert body["error"]["message"] == "parameters must be valid UTF-8 text"


@pytest.mark.parametrize("char", [chr(0xD7FF), chr(0xE000), chr(0x1F600)], ids=["D7FF", "E000", "1F600"])
def test_characters_next_to_the_surrogates_are_text(api: Any, char: str) -> None:
    # Valid text, so the request is routed: the unknown parameter it names is what is refused.
    status, body, _ = call(api, "/v1/events", {f"x{char}": "1"})
    assert_error(status, body, 400)
    assert body["error"]["code"] == "unknown_parameter"


def test_a_page_of_more_than_256_rows_that_all_fit_is_the_last_page(api: Any, admin: Any) -> None:
    seed(admin, 300)
    status, body, _ = call(api, "/v1/events", {"limit": "300"})
    assert status == 200
    assert (len(body["items"]), body["next_cursor"]) == (300, None)


def test_a_value_postgresql_rejects_is_400_and_the_drivers_text_never_leaves(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    call(api, "/v1/health")

    def rejected(*_args: Any) -> Any:
        raise psycopg2.DataError('date/time field value out of range: "secret driver text"')

    monkeypatch.setattr(api._store, "list_events", rejected)
    status, body, _ = call(api, "/v1/events")
    assert_error(status, body, 400)
    assert body["error"]["code"] == "invalid_parameter"
    assert "driver" not in json.dumps(body)


def test_every_log_line_of_an_invocation_names_it(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    call(api, "/v1/health")

    def rejected(*_args: Any) -> Any:
        raise psycopg2.DataError("out of range")

    monkeypatch.setattr(api._store, "list_events", rejected)
    out = io.StringIO()
    monkeypatch.setattr(api.logger.registered_handler, "stream", out)
    context = FakeContext()
    api.lambda_handler(api_event("/v1/events"), context)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines
    assert all(line.get("function_request_id") == context.aws_request_id for line in lines)


def test_without_a_request_context_the_error_names_the_lambdas_request_id(api: Any) -> None:
    event = api_event("/v1/nothing")
    event["requestContext"] = None
    context = FakeContext()
    resp = api.lambda_handler(event, context)
    assert resp["statusCode"] == 404
    assert json.loads(resp["body"])["error"]["request_id"] == context.aws_request_id


def test_validation_messages_are_cut_at_500_characters(api: Any) -> None:
    query = {"limit": "x", "since": "b" * 60, "until": "c" * 60, "source": "Bad" * 20, "type": "Bad" * 20}
    status, body, _ = call(api, "/v1/events", {**query, "cursor": ""})
    assert_error(status, body, 400)
    assert len(body["error"]["message"]) == 500


def test_an_unknown_parameter_name_is_shown_cut_at_40_characters(api: Any) -> None:
    status, body, _ = call(api, "/v1/events", {"n" * 50: "1"})
    assert_error(status, body, 400)
    assert body["error"]["message"] == "unknown query parameter(s): " + "n" * 40


def test_bad_text_only_in_the_single_value_map_is_refused_as_such(api: Any) -> None:
    body = single_value_map_only(api, {"source": "a\x00"})
    assert body["error"]["message"] == "parameters must be valid UTF-8 text"


def test_a_refusal_before_routing_is_plain_json_text(api: Any) -> None:
    event = api_event("/v1/events")
    event["body"] = "{}"
    resp = api.lambda_handler(event, FakeContext())
    assert (resp["statusCode"], resp["isBase64Encoded"]) == (400, False)
    assert json.loads(resp["body"])["error"]["code"] == "unexpected_body"
