"""``rampart dlq``: inspect dead-lettered messages and move them back after a fix."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rampart.cli.common import (
    EXIT_USAGE,
    CliError,
    add_state_file_option,
    env_or,
    positive_int,
    resolve_state_path,
    say,
)


def _dead_letter_queue(args: argparse.Namespace) -> Any:
    """The DLQ of the running `rampart up`, or (with --dlq-url and --queue-url) real queues with the caller's
    ordinary AWS credentials."""
    from rampart.dlq import DeadLetterQueue  # noqa: PLC0415

    if args.dlq_url or args.queue_url:
        if not (args.dlq_url and args.queue_url):
            raise CliError("--dlq-url and --queue-url go together", EXIT_USAGE)
        import boto3  # noqa: PLC0415

        return DeadLetterQueue(boto3.client("sqs"), args.dlq_url, args.queue_url)
    from rampart.local import aws  # noqa: PLC0415
    from rampart.local.state import read_state  # noqa: PLC0415

    state = read_state(resolve_state_path(args))
    return DeadLetterQueue(aws.client("sqs", state.aws_endpoint, state.region), state.dlq_url, state.queue_url)


def cmd_dlq(args: argparse.Namespace) -> int:
    dlq = _dead_letter_queue(args)
    if args.action == "list":
        letters = dlq.list(limit=args.max)
        if args.json:
            for m in letters:
                row = {
                    "message_id": m.message_id,
                    "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                    "receive_count": m.receive_count,
                    "reason": m.reason,
                    "original_message_id": m.original_message_id,
                    "body": m.body,
                }
                print(json.dumps(row, sort_keys=True))
        else:
            for m in letters:
                sent = m.sent_at.strftime("%Y-%m-%d %H:%M:%S") if m.sent_at else "?"
                print(f"{m.message_id}  {sent}  {m.reason[:70]}")
                print(f"    {m.preview(100)}")
        say(f"{len(letters)} message(s) in the DLQ")
        return 0
    if args.action == "show":
        letter = dlq.show(args.message_id)
        if letter is None:
            raise CliError(f"no message {args.message_id} in the DLQ", 1)
        print(f"message id     {letter.message_id}")
        print(f"sent at        {letter.sent_at.isoformat() if letter.sent_at else '?'}")
        print(f"receive count  {letter.receive_count}")
        print(f"reason         {letter.reason}")
        print(f"original id    {letter.original_message_id or '-'}")
        print("body:")
        print(letter.body)
        return 0
    ids = None if args.all else set(args.message_ids)
    if not args.all and not ids:
        raise CliError("name the message ids to redrive, or --all", EXIT_USAGE)
    moved, failed = dlq.redrive(ids)
    say(f"moved {moved} message(s) back to the queue" + (f"; {failed} could not be moved" if failed else ""))
    return 0 if not failed else 1


def register(sub: Any) -> None:
    p = sub.add_parser("dlq", help="inspect dead-lettered messages and move them back after a fix")
    p.add_argument("--dlq-url", default=env_or("RAMPART_DLQ_URL"), help="a real DLQ (env RAMPART_DLQ_URL)")
    p.add_argument("--queue-url", default=env_or("RAMPART_QUEUE_URL"), help="its source queue (env RAMPART_QUEUE_URL)")
    add_state_file_option(p)
    d = p.add_subparsers(dest="action", metavar="ACTION")
    d.required = True
    dl = d.add_parser("list", help="every dead letter with the reason it failed (consumes nothing)")
    dl.add_argument("--max", type=positive_int, default=100, help="at most this many (100)")
    dl.add_argument("--json", action="store_true", help="one JSON object per line")
    ds = d.add_parser("show", help="one dead letter, with its body")
    ds.add_argument("message_id")
    dr = d.add_parser("redrive", help="send messages back to the source queue, then delete them from the DLQ")
    dr.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
    dr.add_argument("--all", action="store_true", help="every message in the DLQ")
    p.set_defaults(func=cmd_dlq)
