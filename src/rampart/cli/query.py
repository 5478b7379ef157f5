"""``rampart query``: call the API through the client (the running stack, or --url/--api-key)."""

from __future__ import annotations

import argparse
from typing import Any

from rampart.cli.common import (
    EXIT_USAGE,
    CliError,
    add_state_file_option,
    dumps_exact,
    env_or,
    jsonable,
    non_negative_float,
    positive_int,
    resolve_state_path,
    say,
)


def _client(args: argparse.Namespace) -> Any:
    from rampart.client import RampartClient  # noqa: PLC0415
    from rampart.local.state import read_state  # noqa: PLC0415

    url, key = args.url, args.api_key
    if not url or not key:
        state = read_state(resolve_state_path(args))
        url, key = url or state.api_url, key or state.api_key
    try:
        return RampartClient(url, key, timeout=args.timeout)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def cmd_query(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.what == "events":
        shown = 0
        for event in client.list_events(
            source=args.source, type=args.type, since=args.since, until=args.until, page_size=args.page_size
        ):
            if args.max is not None and shown >= args.max:
                break
            print(dumps_exact(jsonable(event), sort_keys=True))
            shown += 1
        say(f"{shown} event(s)")
    elif args.what == "event":
        print(dumps_exact(jsonable(client.get_event(args.event_id)), indent=2, sort_keys=True))
    elif args.what == "stats":
        print(dumps_exact(jsonable(client.stats(args.bucket, args.since, args.until)), indent=2))
    else:
        print(dumps_exact(jsonable(client.health()), indent=2))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("query", help="call the API through the client (the running stack, or --url/--api-key)")
    p.add_argument(
        "--url", default=env_or("RAMPART_API_URL"), help="API URL, e.g. https://.../v1 (env RAMPART_API_URL)"
    )
    p.add_argument("--api-key", default=env_or("RAMPART_API_KEY"), help="API key (env RAMPART_API_KEY)")
    p.add_argument("--timeout", type=non_negative_float, default=10.0, help="seconds per request (10)")
    add_state_file_option(p)
    q = p.add_subparsers(dest="what", metavar="WHAT")
    q.required = True
    e = q.add_parser("events", help="list events as JSON lines, following cursors")
    e.add_argument("--source")
    e.add_argument("--type")
    e.add_argument("--since", help="ISO-8601 with a timezone")
    e.add_argument("--until", help="ISO-8601 with a timezone")
    e.add_argument("--page-size", type=positive_int, default=None, help="events per request (API default 100)")
    e.add_argument("--max", type=positive_int, default=100, help="stop after this many events (100)")
    e.add_argument("--all", dest="max", action="store_const", const=None, help="every matching event")
    g = q.add_parser("event", help="one event by id")
    g.add_argument("event_id")
    s = q.add_parser("stats", help="counts per type per hour or day")
    s.add_argument("--bucket", choices=["hour", "day"], default="hour")
    s.add_argument("--since")
    s.add_argument("--until")
    q.add_parser("health", help="the API's health, including the database")
    p.set_defaults(func=cmd_query)
