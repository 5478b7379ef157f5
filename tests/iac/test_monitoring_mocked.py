"""The alarms of iac/modules/monitoring as the module computes them, checked in full without an emulator: the
module applied against Terraform's mocked provider (tests/iac/mock_apply.py, ~5 s), then held to the same
expectations as the emulator proofs (tests/iac/test_emulate_alerts.py: the SLOs as promised, not values read back
from the Terraform). Fast enough for `make prove-controls` to rerun for every mutation of the alarm controls.
"""

from __future__ import annotations

from typing import Any

import pytest

from rampart.ingest import metrics
from tests.doc_anchors import anchors
from tests.iac.mock_apply import MockApply, mock_apply
from tests.iac.test_emulate_alerts import OPERATIONS, SLOS, THRESHOLD_ALARMS, TIERS, _evaluate

NAME = "rampart-test"
TOPIC_ARN = f"arn:aws:sns:eu-central-1:000000000000:{NAME}-alarms"
INPUTS: dict[str, Any] = {
    "name": NAME,
    "topic_name": f"{NAME}-events",
    "queue_name": f"{NAME}-events",
    "dlq_name": f"{NAME}-events-dlq",
    "delivery_dlq_name": f"{NAME}-events-delivery-dlq",
    "ingest_function_name": f"{NAME}-ingest",
    "api_function_name": f"{NAME}-api",
    "api_name": f"{NAME}-api",
    "api_stage_name": "v1",
    "db_instance_identifier": f"{NAME}-db",
    "web_acl_name": f"{NAME}-waf",
    "db_max_connections": 40,
    "alarm_subscribers": [{"protocol": "email", "endpoint": "oncall@example.com"}],
}
MOCKS = f"""
  mock_resource "aws_sns_topic" {{
    defaults = {{ arn = "{TOPIC_ARN}" }}
  }}
"""


@pytest.fixture(scope="module")
def planned() -> MockApply:
    result = mock_apply("monitoring", INPUTS, MOCKS)
    assert result.status == "pass", "\n".join(result.diagnostics)
    return result


@pytest.fixture(scope="module")
def alarms(planned: MockApply) -> dict[str, dict[str, Any]]:
    """Every alarm by name, metric and composite alike (``_type`` tells which)."""
    found = {a["alarm_name"]: {**a, "_type": "metric"} for a in planned.of_type("aws_cloudwatch_metric_alarm").values()}
    for alarm in planned.of_type("aws_cloudwatch_composite_alarm").values():
        found[alarm["alarm_name"]] = {**alarm, "_type": "composite"}
    return found


def _window(slo: str, label: str) -> str:
    return f"{NAME}-{slo}-burn-{label}"


def test_the_alarm_topic_is_encrypted_and_reaches_every_subscriber(planned: MockApply) -> None:
    [topic] = planned.of_type("aws_sns_topic").values()
    assert topic["kms_master_key_id"], "the alarm topic is not encrypted with the module's CMK"
    subscriptions = planned.of_type("aws_sns_topic_subscription").values()
    assert [(s["topic_arn"], s["protocol"], s["endpoint"]) for s in subscriptions] == [
        (TOPIC_ARN, "email", "oncall@example.com")
    ]


def test_exactly_the_expected_alarms_and_every_paging_one_notifies_alarm_and_ok(
    alarms: dict[str, dict[str, Any]],
) -> None:
    composites = {f"{NAME}-{slo}-{tier}-burn" for slo in SLOS for tier in TIERS}
    windows = {_window(slo, label) for slo in SLOS for long, short, _ in TIERS.values() for label, _ in (long, short)}
    thresholds = {f"{NAME}-{key}" for key in THRESHOLD_ALARMS}
    assert set(alarms) == composites | windows | thresholds
    for name in composites | thresholds:
        alarm = alarms[name]
        assert alarm["actions_enabled"] in (None, True), name
        assert alarm["alarm_actions"] == [TOPIC_ARN], f"{name}: ALARM reaches {alarm['alarm_actions']}"
        assert alarm["ok_actions"] == [TOPIC_ARN], f"{name}: OK (recovery) reaches {alarm['ok_actions']}"
        assert not alarm["insufficient_data_actions"], name
    for name in windows:  # parts of a composite: one page per incident, from the composite
        assert not alarms[name]["alarm_actions"] and not alarms[name]["ok_actions"], name


def test_each_slo_window_alarm_computes_its_burn_rate(alarms: dict[str, dict[str, Any]]) -> None:
    api_dimensions = {"ApiName": INPUTS["api_name"], "Stage": INPUTS["api_stage_name"]}
    for slo, expected in SLOS.items():
        budget = 1 - expected["objective"]
        for (long_label, long_s), (short_label, short_s), burn_rate in TIERS.values():
            for label, seconds in ((long_label, long_s), (short_label, short_s)):
                alarm = alarms[_window(slo, label)]
                [query] = [q for q in alarm["metric_query"] if q["metric"]]
                [expression] = [q for q in alarm["metric_query"] if q["expression"]]
                [stat] = query["metric"]
                assert expression["return_data"] is True and not query["return_data"]
                assert (stat["namespace"], stat["metric_name"]) == (expected["namespace"], expected["metric"])
                assert (stat["stat"], stat["period"]) == (expected["stat"], seconds), slo
                wanted = api_dimensions if slo.startswith("api") else {"FunctionName": INPUTS["ingest_function_name"]}
                assert stat["dimensions"] == wanted, (slo, stat["dimensions"])
                assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanThreshold", burn_rate)
                assert alarm["evaluation_periods"] == 1 and alarm["datapoints_to_alarm"] == 1
                assert alarm["treat_missing_data"] == "notBreaching"
                # The expression is the burn rate: feed it the statistic of a window that burns at `burn_rate`.
                bad_fraction = burn_rate * budget
                m = 100 * (1 - bad_fraction) if expected["stat"].startswith("PR") else bad_fraction
                computed = _evaluate(expression["expression"].replace(query["id"], "m"), m)
                assert computed == pytest.approx(burn_rate), (slo, label, expression["expression"])


def test_each_burn_tier_pages_only_when_its_long_and_short_windows_both_burn(
    alarms: dict[str, dict[str, Any]],
) -> None:
    for slo in SLOS:
        for tier, ((long_label, _), (short_label, _), _rate) in TIERS.items():
            composite = alarms[f"{NAME}-{slo}-{tier}-burn"]
            assert composite["_type"] == "composite"
            long, short = _window(slo, long_label), _window(slo, short_label)
            assert composite["alarm_rule"] == f'ALARM("{long}") AND ALARM("{short}")'


def test_the_threshold_alarms_watch_what_they_claim(alarms: dict[str, dict[str, Any]]) -> None:
    def watches(key: str) -> tuple[Any, ...]:
        alarm = alarms[f"{NAME}-{key}"]
        return (
            alarm["namespace"],
            alarm["metric_name"],
            alarm["dimensions"],
            alarm["extended_statistic"] or alarm["statistic"],
            alarm["period"],
            alarm["evaluation_periods"],
            alarm["datapoints_to_alarm"],
            alarm["threshold"],
            alarm["comparison_operator"],
            alarm["treat_missing_data"],
        )

    above, visible, quiet = "GreaterThanThreshold", "ApproximateNumberOfMessagesVisible", "notBreaching"
    ingest = {"FunctionName": INPUTS["ingest_function_name"]}
    db = {"DBInstanceIdentifier": INPUTS["db_instance_identifier"]}
    assert watches("dlq-not-empty") == (
        *("AWS/SQS", visible, {"QueueName": INPUTS["dlq_name"]}, "Maximum"),
        *(60, 1, 1, 0, above, quiet),
    )
    assert watches("delivery-dlq-not-empty") == (
        *("AWS/SQS", visible, {"QueueName": INPUTS["delivery_dlq_name"]}, "Maximum"),
        *(60, 1, 1, 0, above, quiet),
    )
    assert watches("sns-delivery-failed") == (
        *("AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": INPUTS["topic_name"]}, "Sum"),
        *(60, 1, 1, 0, above, quiet),
    )
    assert watches("oldest-message-age") == (
        *("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": INPUTS["queue_name"]}, "Maximum"),
        *(60, 3, 2, 300, above, quiet),
    )
    assert watches("ingest-freshness-p95") == (
        *("Rampart", metrics.PUBLISH_TO_STORED, ingest, "p95"),
        *(300, 3, 2, 300, above, quiet),
    )
    assert watches("ingest-batch-item-failures")[:4] == ("Rampart", metrics.BATCH_ITEM_FAILURES, ingest, "Sum")
    assert watches("ingest-batch-item-failures")[7:9] == (0, above)
    assert watches("ingest-dead-lettered")[:4] == ("Rampart", metrics.RECORDS_DEAD_LETTERED, ingest, "Sum")
    assert watches("ingest-dead-lettered")[7:9] == (0, above)
    assert watches("ingest-errors")[:4] == ("AWS/Lambda", "Errors", ingest, "Sum")
    assert watches("db-cpu")[:4] == ("AWS/RDS", "CPUUtilization", db, "Average")
    assert watches("db-free-storage")[:3] == ("AWS/RDS", "FreeStorageSpace", db)
    assert watches("db-free-storage")[8:] == ("LessThanThreshold", "breaching")
    assert watches("db-connections")[:3] == ("AWS/RDS", "DatabaseConnections", db)
    assert watches("db-connections")[7] == INPUTS["db_max_connections"]
    waf = {"WebACL": INPUTS["web_acl_name"], "Region": "eu-central-1", "Rule": "ALL"}
    assert watches("waf-blocked-spike")[:4] == ("AWS/WAFV2", "BlockedRequests", waf, "Sum")


def test_every_alarm_links_a_runbook_that_exists(alarms: dict[str, dict[str, Any]]) -> None:
    headings = anchors(OPERATIONS)
    for name, alarm in alarms.items():
        description = alarm.get("alarm_description") or ""
        link = description.rpartition("Runbook: docs/operations.md#")[2]
        assert link and link != description, f"{name}: no runbook link at the end of its description"
        assert link in headings, f"{name}: docs/operations.md has no heading for #{link}"
