"""``rampart status``: queue depth, DLQ depth, events stored, ingest lag of the running stack."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rampart.cli.common import add_state_file_option, resolve_state_path

LAG_SQL = """
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - occurred_at)),
       max(extract(epoch FROM received_at - occurred_at)),
       extract(epoch FROM now() - max(received_at))
FROM rampart.events WHERE received_at > now() - interval '5 minutes'
"""


def database_status(db_env: dict[str, str]) -> dict[str, Any]:
    """Events stored and ingest lag (received_at - occurred_at over the last 5 minutes), read-only."""
    from rampart.db.connection import Database  # noqa: PLC0415
    from rampart.db.settings import DatabaseSettings  # noqa: PLC0415

    db = Database(DatabaseSettings.from_env(db_env, application_name="rampart-status"), read_only=True)

    def work(cur: Any) -> dict[str, Any]:
        cur.execute("SELECT count(*) FROM rampart.events")
        total = int(cur.fetchone()[0])
        cur.execute(LAG_SQL)
        recent, p50, worst, since_last = cur.fetchone()
        return {
            "events_stored": total,
            "recent_events": int(recent),
            "lag_p50_s": float(p50) if p50 is not None else None,
            "lag_max_s": float(worst) if worst is not None else None,
            "last_stored_s_ago": float(since_last) if since_last is not None else None,
        }

    try:
        return db.run(work)
    finally:
        db.close()


def queue_depths(state: Any) -> dict[str, int]:
    from rampart.local import aws  # noqa: PLC0415

    sqs = aws.client("sqs", state.aws_endpoint, state.region)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    q = sqs.get_queue_attributes(QueueUrl=state.queue_url, AttributeNames=names)["Attributes"]
    d = sqs.get_queue_attributes(QueueUrl=state.dlq_url, AttributeNames=names)["Attributes"]
    return {
        "queue_visible": int(q["ApproximateNumberOfMessages"]),
        "queue_in_flight": int(q["ApproximateNumberOfMessagesNotVisible"]),
        "dlq_depth": int(d["ApproximateNumberOfMessages"]) + int(d["ApproximateNumberOfMessagesNotVisible"]),
    }


def cmd_status(args: argparse.Namespace) -> int:
    from rampart.local.state import pid_alive, read_state  # noqa: PLC0415

    state = read_state(resolve_state_path(args))
    depths = queue_depths(state)
    db = database_status(state.db_env)
    children = {name: pid_alive(pid) for name, pid in state.children.items()}
    if args.json:
        print(json.dumps({"api_url": state.api_url, **depths, **db, "processes_alive": children}, indent=2))
        return 0
    lag = "no events in the last 5 minutes"
    if db["lag_p50_s"] is not None:
        lag = (
            f"p50 {db['lag_p50_s']:.2f} s, max {db['lag_max_s']:.2f} s over {db['recent_events']} event(s) "
            f"received in the last 5 min; last stored {db['last_stored_s_ago']:.0f} s ago"
        )
    down = [n for n, alive in children.items() if not alive]
    print(f"API_URL        {state.api_url}  (up since {state.started_at[:19]}Z, pid {state.pid})")
    print(f"queue depth    {depths['queue_visible']} waiting, {depths['queue_in_flight']} in flight")
    print(f"DLQ depth      {depths['dlq_depth']}")
    print(f"events stored  {db['events_stored']}")
    print(f"ingest lag     {lag}")
    print(f"processes      {'all running' if not down else 'NOT RUNNING: ' + ', '.join(down)}")
    return 0 if not down else 1


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="queue depth, DLQ depth, events stored, ingest lag")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_state_file_option(p)
    p.set_defaults(func=cmd_status)
