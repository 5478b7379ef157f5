"""``rampart status``: the three SLOs of the running stack (last 5 minutes, error budget left since it started),
queue, DLQ and delivery DLQ depths, events stored, the producer lag, and whether every process runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rampart.cli.common import add_state_file_option, resolve_state_path

LAG_SQL = """
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - occurred_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - occurred_at)),
       max(extract(epoch FROM received_at - occurred_at)),
       extract(epoch FROM now() - max(received_at))
FROM rampart.events WHERE received_at > now() - interval '5 minutes'
"""


_DB_FIGURES = ("events_stored", "recent_events", "lag_p50_s", "lag_p95_s", "lag_max_s", "last_stored_s_ago")


def database_status(db_env: dict[str, str]) -> dict[str, Any]:
    """Events stored and the producer lag (received_at - occurred_at over the last 5 minutes), read-only."""
    from rampart.db.connection import Database, DatabaseUnavailableError  # noqa: PLC0415
    from rampart.db.settings import DatabaseSettings  # noqa: PLC0415

    db = Database(DatabaseSettings.from_env(db_env, application_name="rampart-status"), read_only=True)

    def work(cur: Any) -> dict[str, Any]:
        cur.execute("SELECT count(*) FROM rampart.events")
        total = int(cur.fetchone()[0])
        cur.execute(LAG_SQL)
        recent, p50, p95, worst, since_last = cur.fetchone()
        return {
            "events_stored": total,
            "recent_events": int(recent),
            "lag_p50_s": float(p50) if p50 is not None else None,
            "lag_p95_s": float(p95) if p95 is not None else None,
            "lag_max_s": float(worst) if worst is not None else None,
            "last_stored_s_ago": float(since_last) if since_last is not None else None,
        }

    try:
        return db.run(work)
    except DatabaseUnavailableError:
        # `status` is what one runs during an incident: say the database is down, show everything else.
        return {"database_unavailable": True, **dict.fromkeys(_DB_FIGURES)}
    finally:
        db.close()


def queue_depths(state: Any) -> dict[str, int | None]:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    from rampart.local import aws  # noqa: PLC0415

    sqs = aws.client("sqs", state.aws_endpoint, state.region)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    q = sqs.get_queue_attributes(QueueUrl=state.queue_url, AttributeNames=names)["Attributes"]
    d = sqs.get_queue_attributes(QueueUrl=state.dlq_url, AttributeNames=names)["Attributes"]
    try:  # <name>-events-delivery-dlq beside <name>-events (rampart.local.aws)
        delivery: int | None = sum(
            int(v)
            for v in sqs.get_queue_attributes(QueueUrl=state.queue_url + "-delivery-dlq", AttributeNames=names)[
                "Attributes"
            ].values()
        )
    except ClientError:  # a stack from before the delivery DLQ
        delivery = None
    return {
        "queue_visible": int(q["ApproximateNumberOfMessages"]),
        "queue_in_flight": int(q["ApproximateNumberOfMessagesNotVisible"]),
        "dlq_depth": int(d["ApproximateNumberOfMessages"]) + int(d["ApproximateNumberOfMessagesNotVisible"]),
        "delivery_dlq_depth": delivery,
    }


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def slo_lines(slos: dict[str, Any]) -> list[str]:
    """One line per SLO: the last 5 minutes, then the error budget left since the stack started."""
    from rampart.local.slo import OBJECTIVES  # noqa: PLC0415

    minutes = f"{slos['window_s'] / 60:g} min"
    lines = []
    for objective in OBJECTIVES:
        slo = slos[objective.key]
        recent, lifetime = slo["recent"], slo["lifetime"]
        target = f"SLO {100 * objective.objective:g} %"
        if objective.key == "api_availability":
            now = f"{_ratio(None if recent['total'] == 0 else recent['bad'] / recent['total'])} 5xx"
            of = f"of {recent['total']} request(s) in the last {minutes} ({target} not 5xx)"
        else:
            name = f"p{objective.percentile:g}"
            value = recent[name]
            shown = "-" if value is None else f"{value:.1f} {objective.unit}"
            kind = "request(s)" if objective.key == "api_latency" else "event(s) publish->stored"
            now = f"{name} {shown}, {_ratio(recent['good_ratio'])} within {objective.bad_above:g} {objective.unit}"
            of = f"over {recent['total']} {kind} in the last {minutes} ({target})"
        left = lifetime["budget_remaining"]
        budget = "no traffic yet" if left is None else f"{100 * left:.1f} % left"
        lines.append(
            f"{objective.title:<14} {now} {of}; error budget since start: {budget} "
            f"({lifetime['bad']} bad of {lifetime['total']})"
        )
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    from rampart.local.slo import slo_report  # noqa: PLC0415
    from rampart.local.state import pid_alive, read_state  # noqa: PLC0415

    state = read_state(resolve_state_path(args))
    depths = queue_depths(state)
    db = database_status(state.db_env)
    slos = slo_report(Path(state.logs_dir)) if state.logs_dir else None
    children = {name: pid_alive(pid) for name, pid in state.children.items()}
    if args.json:
        figures = {"api_url": state.api_url, **depths, **db, "slos": slos, "processes_alive": children}
        print(json.dumps(figures, indent=2))
        return 0
    lag = "no events in the last 5 minutes"
    if db.get("database_unavailable"):
        lag = "unknown: the database is unavailable"
    elif db["lag_p50_s"] is not None:
        lag = (
            f"p50 {db['lag_p50_s']:.2f} s, p95 {db['lag_p95_s']:.2f} s, max {db['lag_max_s']:.2f} s over "
            f"{db['recent_events']} event(s) received in the last 5 min (received_at - occurred_at: from the "
            f"producer's clock); last stored {db['last_stored_s_ago']:.0f} s ago"
        )
    down = [n for n, alive in children.items() if not alive]
    delivery = depths["delivery_dlq_depth"]
    print(f"API_URL        {state.api_url}  (up since {state.started_at[:19]}Z, pid {state.pid})")
    for line in slo_lines(slos) if slos else ["SLOs           unknown: this `rampart up` did not record its logs"]:
        print(line)
    print(f"queue depth    {depths['queue_visible']} waiting, {depths['queue_in_flight']} in flight")
    print(f"DLQ depth      {depths['dlq_depth']}; delivery DLQ {'-' if delivery is None else delivery}")
    print(f"events stored  {'unknown (database unavailable)' if db['events_stored'] is None else db['events_stored']}")
    print(f"producer lag   {lag}")
    print(f"processes      {'all running' if not down else 'NOT RUNNING: ' + ', '.join(down)}")
    return 0 if not down else 1


def register(sub: Any) -> None:
    p = sub.add_parser(
        "status", help="the SLOs (last 5 min, error budget left), queue/DLQ depths, events stored, producer lag"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_state_file_option(p)
    p.set_defaults(func=cmd_status)
