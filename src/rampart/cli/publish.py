"""``rampart publish``: sample events, or the lines of a file, to the running stack's topic."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from rampart.cli.common import (
    CliError,
    ProgressBar,
    add_state_file_option,
    env_or,
    non_negative_float,
    positive_int,
    resolve_state_path,
    say,
)


def _read_lines(path: Path, validate: bool) -> tuple[list[str], list[int], list[str]]:
    """(bodies, their line numbers, problems) for the non-empty lines of a JSON-lines file."""
    from rampart.events import InvalidEventError, parse_event  # noqa: PLC0415

    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    bodies, numbers, problems = [], [], []
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
            if validate:
                parse_event(text)
        except UnicodeDecodeError:
            problems.append(f"{path}:{number}: not valid UTF-8; skipped")
            continue
        except InvalidEventError as exc:
            problems.append(f"{path}:{number}: {exc.reason[:300]}; skipped")
            continue
        bodies.append(text)
        numbers.append(number)
    return bodies, numbers, problems


def cmd_publish(args: argparse.Namespace) -> int:
    from rampart.local import aws  # noqa: PLC0415
    from rampart.local.producer import publish, sample_events  # noqa: PLC0415
    from rampart.local.state import read_state  # noqa: PLC0415

    state = read_state(resolve_state_path(args))
    problems: list[str] = []
    if args.file:
        bodies, numbers, problems = _read_lines(Path(args.file).expanduser(), validate=not args.raw)
        for problem in problems:
            say(f"rampart publish: {problem}")
        what = f"{len(bodies)} line(s) of {args.file}"
    else:
        backdate = dt.timedelta(hours=args.backdate_hours) if args.backdate_hours else None
        bodies, numbers = sample_events(args.count, backdate=backdate), list(range(1, args.count + 1))
        what = f"{len(bodies)} sample event(s)"
    say(f"==> [publish] {what} to {state.topic_arn}" + (f" at {args.rate:g}/s" if args.rate else ""))
    long_run = len(bodies) >= 200 or (args.rate and len(bodies) / args.rate > 2)
    bar = ProgressBar(len(bodies), "published") if long_run else None
    sns = aws.client("sns", state.aws_endpoint, state.region)
    result = publish(sns, state.topic_arn, bodies, args.rate or None, bar.update if bar else None, numbers)
    if bar:
        bar.close()
    for label, reason in result.failed[:20]:
        say(f"rampart publish: {'line' if args.file else 'event'} {label}: not published ({reason})")
    say(f"==> [publish] published {result.sent}, failed {len(result.failed)}, skipped {len(problems)}")
    return 0 if not result.failed and not problems else 1


def register(sub: Any) -> None:
    p = sub.add_parser("publish", help="publish sample events, or the lines of a file, to the running stack")
    p.add_argument(
        "--count",
        type=positive_int,
        default=env_or("RAMPART_PUBLISH_COUNT", "100"),  # a string: argparse applies `type`
        help="number of generated sample events (env RAMPART_PUBLISH_COUNT; 100)",
    )
    p.add_argument(
        "--file",
        default=env_or("RAMPART_PUBLISH_FILE"),
        help="publish the lines of this JSON-lines file instead (env RAMPART_PUBLISH_FILE)",
    )
    p.add_argument(
        "--rate",
        type=non_negative_float,
        default=env_or("RAMPART_PUBLISH_RATE", "0"),
        help="messages per second, 0 for as fast as possible (env RAMPART_PUBLISH_RATE; 0)",
    )
    p.add_argument(
        "--backdate-hours",
        type=non_negative_float,
        default=0.0,
        help="spread the samples' occurred_at over this many past hours",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="publish file lines as they are, without validating them first (to exercise the DLQ)",
    )
    add_state_file_option(p)
    p.set_defaults(func=cmd_publish)
