"""`rampart status` shows the three SLOs of a running `rampart up` as a user sees them: API latency and 5xx ratio
from the gateway's access log, publish -> stored freshness from the ingest's EMF lines, each over the last 5 minutes
and as the error budget left since the stack started; 5xx answers spend the availability budget."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rampart.local.stack import Stack
from rampart.local.state import pid_alive
from tests.e2e.conftest import wait_until
from tests.e2e.helpers import event

pytestmark = pytest.mark.e2e

RAMPART = [sys.executable, "-m", "rampart.cli"]


@pytest.fixture
def up() -> Iterator[tuple[dict[str, str], str, str]]:
    """A `rampart up` of our own (its own state file and TMPDIR): (environment, API_URL, API_KEY)."""
    scratch = Path(tempfile.mkdtemp(prefix="rampart-e2e-slo-"))
    scratch.chmod(0o755)
    tmp = scratch / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env |= {"TMPDIR": str(tmp), "RAMPART_STATE_FILE": str(scratch / "state" / "state.json")}
    proc = subprocess.Popen(
        [*RAMPART, "up", "--api-port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True).start()
    try:
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 90
        while len(printed) < 2:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"`rampart up` printed no API_URL/API_KEY: {''.join(stderr)[-2000:]}")
            name, _, value = line.strip().partition("=")
            printed[name] = value
        yield env, printed["API_URL"], printed["API_KEY"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "".join(stderr)[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)


def _status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAMPART, "status", *args], check=False, env=env, capture_output=True, text=True, timeout=60)


def _figures(env: dict[str, str]) -> dict[str, Any]:
    result = _status(env, "--json")
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def _get(url: str, key: str | None) -> int:
    request = urllib.request.Request(url, headers={"x-api-key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_status_shows_the_slos_of_a_running_stack_and_5xx_spend_the_budget(
    up: tuple[dict[str, str], str, str],
) -> None:
    env, api_url, api_key = up
    statuses = [_get(f"{api_url}/events?limit=5", api_key) for _ in range(20)]
    statuses += [_get(f"{api_url}/events", None) for _ in range(3)]  # 403: a client mistake, not an error
    assert statuses == [200] * 20 + [403] * 3
    source = f"e2e-slo-{uuid.uuid4().hex[:8]}"
    events_file = Path(env["TMPDIR"]) / "events.jsonl"
    events_file.write_text("".join(json.dumps(event(source, i=i)) + "\n" for i in range(5)))
    published = subprocess.run(
        [*RAMPART, "publish", "--file", str(events_file)], check=False, env=env, capture_output=True, text=True
    )
    assert published.returncode == 0, published.stderr

    figures = wait_until(
        lambda: (f := _figures(env))["slos"]["freshness"]["lifetime"]["total"] >= 5 and f, timeout=60, interval=0.5
    )
    slos = figures["slos"]
    latency, availability, freshness = slos["api_latency"], slos["api_availability"], slos["freshness"]
    assert slos["window_s"] == 300
    assert latency["recent"]["total"] >= 23 and latency["recent"]["p99"] is not None
    assert availability["recent"]["total"] >= 23 and availability["recent"]["bad"] == 0
    assert availability["lifetime"]["budget_remaining"] == 1.0
    # publish -> stored, one value per stored event (the five just published), all within the SLO's 300 s
    assert freshness["recent"]["total"] == freshness["lifetime"]["total"] == 5
    assert freshness["recent"]["good_ratio"] == 1.0 and 0 <= freshness["recent"]["p95"] < 300
    assert freshness["lifetime"]["budget_remaining"] == 1.0
    assert figures["delivery_dlq_depth"] == 0 and figures["lag_p95_s"] is not None

    # The database goes away: the API answers 503, which spends the availability budget (0.5 % of the requests).
    state = json.loads(Path(env["RAMPART_STATE_FILE"]).read_text())
    assert state["logs_dir"] and Path(state["logs_dir"], "gateway.log.clock").is_file()
    os.kill(state["postgres_pid"], signal.SIGINT)  # PostgreSQL's fast shutdown
    wait_until(lambda: not pid_alive(state["postgres_pid"]), timeout=30)
    failures = [_get(f"{api_url}/events?limit=5", api_key) for _ in range(10)]
    assert all(500 <= status <= 599 for status in failures), failures

    after = _figures(env)
    assert after["database_unavailable"] is True and after["events_stored"] is None
    availability = after["slos"]["api_availability"]
    assert availability["recent"]["bad"] == availability["lifetime"]["bad"] == 10
    total = availability["lifetime"]["total"]
    assert availability["lifetime"]["budget_remaining"] == pytest.approx(1 - 10 / (0.005 * total))
    text = _status(env)
    assert text.returncode == 0, text.stderr
    assert "API 5xx" in text.stdout and f"(10 bad of {total})" in text.stdout
    assert "freshness" in text.stdout and "database is unavailable" in text.stdout


def test_the_twin_subscription_redrives_to_a_delivery_dlq_on_the_cmk(stack: Stack) -> None:
    assert stack.resources is not None
    res = stack.resources
    sns, sqs = stack.client("sns"), stack.client("sqs")
    attributes = sns.get_subscription_attributes(SubscriptionArn=res.subscription_arn)["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": res.delivery_dlq_arn}
    dlq = sqs.get_queue_attributes(QueueUrl=res.delivery_dlq_url, AttributeNames=["All"])["Attributes"]
    assert dlq["KmsMasterKeyId"] == res.kms_key_arn and dlq["MessageRetentionPeriod"] == "1209600"
    allow = [s for s in json.loads(dlq["Policy"])["Statement"] if s["Effect"] == "Allow"]
    assert allow == [
        {
            "Sid": "SnsRedriveFromThisTopicOnly",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": res.delivery_dlq_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": res.topic_arn}},
        }
    ]
