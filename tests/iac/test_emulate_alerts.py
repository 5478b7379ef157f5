"""The alarms as the dev root applies them (moto; harness tests/iac/emulator.py), checked in full: namespace,
metric, dimensions that name resources the stack created, statistic, period, evaluation periods and datapoints,
threshold, comparison, missing data, ALARM and OK actions; the burn-rate math of each SLO; a topic that reaches
someone; no silent delivery failure; the dashboard's SLO widgets; and docs/operations.md's alarm table, which must
be exactly these alarms (on a mismatch the expected table is written to build/terraform/alarms-table.md).

Run by `make iac-emulate`. The expectations here are the SLOs as stated (docs/operations.md, issue 14), not values
read back from the Terraform: a wrong dimension, period or budget fails.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from typing import Any

import pytest

from rampart.ingest import metrics
from tests.doc_anchors import REPO, anchors
from tests.iac.emulator import ENVIRONMENT, REGION, client, customer_managed_rotating

pytestmark = pytest.mark.emulate

NAME = f"rampart-{ENVIRONMENT}"
OPERATIONS = REPO / "docs" / "operations.md"
TABLE_OUT = REPO / "build" / "terraform" / "alarms-table.md"
TABLE_BEGIN = "<!-- alarms:begin"
TABLE_END = "<!-- alarms:end -->"

# The SLOs as promised: objective, and the metric whose statistic gives the good percentage (PR) or bad fraction.
SLOS: dict[str, dict[str, Any]] = {
    "api-latency": {"objective": 0.99, "namespace": "AWS/ApiGateway", "metric": "Latency", "stat": "PR(:300)"},
    "api-availability": {"objective": 0.995, "namespace": "AWS/ApiGateway", "metric": "5XXError", "stat": "Average"},
    "ingest-freshness": {
        "objective": 0.95,
        "namespace": "Rampart",
        "metric": metrics.PUBLISH_TO_STORED,
        "stat": "PR(:300)",
    },
}
# SRE workbook: fast = 1 h and 5 min at 14.4x, slow = 6 h and 30 min at 6x.
TIERS = {"fast": (("1h", 3600), ("5m", 300), 14.4), "slow": (("6h", 21600), ("30m", 1800), 6.0)}
THRESHOLD_ALARMS = {
    "dlq-not-empty",
    "delivery-dlq-not-empty",
    "sns-delivery-failed",
    "oldest-message-age",
    "ingest-freshness-p95",
    "ingest-batch-item-failures",
    "ingest-dead-lettered",
    "ingest-errors",
    "db-cpu",
    "db-free-storage",
    "db-connections",
    "waf-blocked-spike",
}


@pytest.fixture(scope="module")
def applied(stack: dict[str, Any], moto_url: str) -> dict[str, dict[str, Any]]:
    """Every alarm of the stack by name, metric and composite alike."""
    cloudwatch = client("cloudwatch", moto_url)
    found: dict[str, dict[str, Any]] = {}
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{NAME}-", AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    for page in pages:
        for alarm in page["MetricAlarms"]:
            found[alarm["AlarmName"]] = {**alarm, "_type": "metric"}
        for alarm in page["CompositeAlarms"]:
            found[alarm["AlarmName"]] = {**alarm, "_type": "composite"}
    return found


def _window(slo: str, label: str) -> str:
    return f"{NAME}-{slo}-burn-{label}"


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    if alarm["_type"] != "metric":
        return []
    if alarm.get("Metrics"):
        return [q["MetricStat"] for q in alarm["Metrics"] if q.get("MetricStat")]
    return [
        {
            "Metric": {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            },
            "Period": alarm["Period"],
            "Stat": alarm.get("ExtendedStatistic") or alarm.get("Statistic"),
        }
    ]


def _evaluate(expression: str, m: float) -> float:
    """A metric math expression of `m`, numbers, + - * / and parentheses, evaluated (nothing else is accepted)."""
    ops: dict[type, Callable[[float, float], float]] = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
    }

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id == "m":
            return m
        raise AssertionError(f"unexpected element in {expression!r}: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


# ---------------------------------------------------------------------------------------------
# Who the alarms reach
# ---------------------------------------------------------------------------------------------


def test_the_alarm_topic_reaches_someone_and_is_encrypted(stack: dict[str, Any], moto_url: str) -> None:
    sns = client("sns", moto_url)
    topic = stack["outputs"]["alarm_topic_arn"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "rampart-oncall@example.com")]
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert customer_managed_rotating(moto_url, attributes["KmsMasterKeyId"])
    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and statement["Action"] == "sns:Publish"


def test_exactly_the_expected_alarms_exist_and_every_paging_one_notifies_alarm_and_ok(
    stack: dict[str, Any], applied: dict[str, dict[str, Any]]
) -> None:
    topic = stack["outputs"]["alarm_topic_arn"]
    composites = {f"{NAME}-{slo}-{tier}-burn" for slo in SLOS for tier in TIERS}
    windows = {_window(slo, label) for slo in SLOS for long, short, _ in TIERS.values() for label, _ in (long, short)}
    thresholds = {f"{NAME}-{key}" for key in THRESHOLD_ALARMS}
    assert set(applied) == composites | windows | thresholds
    for name in composites | thresholds:
        alarm = applied[name]
        assert alarm["ActionsEnabled"] is True, name
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name  # recovery is notified too
        assert alarm["InsufficientDataActions"] == [], name
    for name in windows:  # parts of a composite: one page per incident, from the composite
        assert applied[name]["AlarmActions"] == applied[name]["OKActions"] == [], name


# ---------------------------------------------------------------------------------------------
# What each alarm watches
# ---------------------------------------------------------------------------------------------


def _resource_checks(stack: dict[str, Any], moto_url: str) -> dict[str, Callable[[str], bool]]:
    sqs, lam, sns = client("sqs", moto_url), client("lambda", moto_url), client("sns", moto_url)
    rds, waf, apigw = client("rds", moto_url), client("wafv2", moto_url), client("apigateway", moto_url)
    apis = {api["name"]: api["id"] for api in apigw.get_rest_apis()["items"]}
    stages = {stage["stageName"] for api_id in apis.values() for stage in apigw.get_stages(restApiId=api_id)["item"]}
    topics = {arn["TopicArn"].rsplit(":", 1)[1] for arn in sns.list_topics()["Topics"]}
    acls = {acl["Name"] for acl in waf.list_web_acls(Scope="REGIONAL")["WebACLs"]}
    queues = {url.rsplit("/", 1)[1] for url in sqs.list_queues(QueueNamePrefix=NAME)["QueueUrls"]}
    functions = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    databases = {db["DBInstanceIdentifier"] for db in rds.describe_db_instances()["DBInstances"]}
    return {
        "QueueName": queues.__contains__,
        "FunctionName": functions.__contains__,
        "TopicName": topics.__contains__,
        "ApiName": apis.__contains__,
        "Stage": stages.__contains__,
        "DBInstanceIdentifier": databases.__contains__,
        "WebACL": acls.__contains__,
        "Region": REGION.__eq__,
        "Rule": "ALL".__eq__,
    }


def test_every_dimension_names_a_resource_the_stack_created(
    stack: dict[str, Any], moto_url: str, applied: dict[str, dict[str, Any]]
) -> None:
    exists = _resource_checks(stack, moto_url)
    checked = 0
    for name, alarm in applied.items():
        for stat in _metric_stats(alarm):
            dimensions = stat["Metric"]["Dimensions"]
            assert dimensions, f"{name}: a metric without dimensions"
            for dimension in dimensions:
                assert dimension["Name"] in exists, f"{name}: unexpected dimension {dimension}"
                assert exists[dimension["Name"]](dimension["Value"]), f"{name}: {dimension} names nothing applied"
                checked += 1
    assert checked >= 30


def test_each_slo_window_alarm_computes_its_burn_rate(
    applied: dict[str, dict[str, Any]], stack: dict[str, Any]
) -> None:
    api_dimensions = sorted([{"Name": "ApiName", "Value": NAME}, {"Name": "Stage", "Value": "v1"}], key=str)
    ingest = stack["outputs"]["ingest_function_name"]
    for slo, expected in SLOS.items():
        budget = 1 - expected["objective"]
        for (long_label, long_s), (short_label, short_s), burn_rate in TIERS.values():
            for label, seconds in ((long_label, long_s), (short_label, short_s)):
                alarm = applied[_window(slo, label)]
                [stat] = _metric_stats(alarm)
                [expression] = [q for q in alarm["Metrics"] if q.get("Expression")]
                assert expression["ReturnData"] is True
                assert [q.get("ReturnData") for q in alarm["Metrics"] if q.get("MetricStat")] == [False]
                assert stat["Metric"]["Namespace"] == expected["namespace"]
                assert stat["Metric"]["MetricName"] == expected["metric"]
                assert stat["Stat"] == expected["stat"] and stat["Period"] == seconds
                dims = sorted(stat["Metric"]["Dimensions"], key=str)
                wanted = api_dimensions if slo.startswith("api") else [{"Name": "FunctionName", "Value": ingest}]
                assert dims == wanted, (slo, dims)
                assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == burn_rate
                assert alarm["EvaluationPeriods"] == 1 and alarm.get("DatapointsToAlarm", 1) == 1
                assert alarm["TreatMissingData"] == "notBreaching"
                # The expression is the burn rate: feed it the statistic of a window that burns at `burn_rate`.
                bad_fraction = burn_rate * budget
                m = 100 * (1 - bad_fraction) if expected["stat"].startswith("PR") else bad_fraction
                assert _evaluate(expression["Expression"].replace(stat_id(alarm), "m"), m) == pytest.approx(burn_rate)


def stat_id(alarm: dict[str, Any]) -> str:
    [query] = [q for q in alarm["Metrics"] if q.get("MetricStat")]
    return str(query["Id"])


def test_each_burn_tier_pages_only_when_its_long_and_short_windows_both_burn(
    applied: dict[str, dict[str, Any]],
) -> None:
    for slo in SLOS:
        for tier, ((long_label, _), (short_label, _), _rate) in TIERS.items():
            composite = applied[f"{NAME}-{slo}-{tier}-burn"]
            assert composite["_type"] == "composite"
            long, short = _window(slo, long_label), _window(slo, short_label)
            assert composite["AlarmRule"] == f'ALARM("{long}") AND ALARM("{short}")'


def test_the_threshold_alarms_watch_what_they_claim(stack: dict[str, Any], applied: dict[str, dict[str, Any]]) -> None:
    outputs = stack["outputs"]
    queue, dlq = outputs["queue_url"].rsplit("/", 1)[1], outputs["dlq_url"].rsplit("/", 1)[1]
    delivery_dlq = outputs["delivery_dlq_url"].rsplit("/", 1)[1]
    ingest, topic = outputs["ingest_function_name"], outputs["topic_arn"].rsplit(":", 1)[1]

    def watches(key: str) -> tuple[str, str, dict[str, str], str, int, int, int, float, str, str]:
        alarm = applied[f"{NAME}-{key}"]
        return (
            alarm["Namespace"],
            alarm["MetricName"],
            {d["Name"]: d["Value"] for d in alarm["Dimensions"]},
            alarm.get("ExtendedStatistic") or alarm["Statistic"],
            alarm["Period"],
            alarm["EvaluationPeriods"],
            alarm["DatapointsToAlarm"],
            alarm["Threshold"],
            alarm["ComparisonOperator"],
            alarm["TreatMissingData"],
        )

    above, visible = "GreaterThanThreshold", "ApproximateNumberOfMessagesVisible"
    quiet = "notBreaching"
    assert watches("dlq-not-empty") == ("AWS/SQS", visible, {"QueueName": dlq}, "Maximum", 60, 1, 1, 0, above, quiet)
    assert watches("delivery-dlq-not-empty")[2] == {"QueueName": delivery_dlq}
    assert watches("delivery-dlq-not-empty")[:2] == ("AWS/SQS", visible) and watches("delivery-dlq-not-empty")[7] == 0
    assert watches("sns-delivery-failed") == (
        *("AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": topic}, "Sum"),
        *(60, 1, 1, 0, above, quiet),
    )
    assert watches("oldest-message-age") == (
        *("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": queue}, "Maximum"),
        *(60, 3, 2, 300, above, quiet),
    )
    # The freshness SLO's own statement per 5 minutes: p95 of publish -> stored above 300 s.
    assert watches("ingest-freshness-p95") == (
        *("Rampart", metrics.PUBLISH_TO_STORED, {"FunctionName": ingest}, "p95"),
        *(300, 3, 2, 300, above, quiet),
    )
    assert watches("ingest-batch-item-failures")[:4] == (
        "Rampart",
        metrics.BATCH_ITEM_FAILURES,
        {"FunctionName": ingest},
        "Sum",
    )
    assert watches("ingest-batch-item-failures")[7:9] == (0, above)
    assert watches("ingest-dead-lettered")[:4] == (
        "Rampart",
        metrics.RECORDS_DEAD_LETTERED,
        {"FunctionName": ingest},
        "Sum",
    )
    assert watches("ingest-dead-lettered")[7:9] == (0, above)
    assert watches("ingest-errors")[:3] == ("AWS/Lambda", "Errors", {"FunctionName": ingest})
    db = {"DBInstanceIdentifier": outputs["db_instance_identifier"]}
    assert watches("db-free-storage")[:3] == ("AWS/RDS", "FreeStorageSpace", db)
    assert watches("db-free-storage")[8:] == ("LessThanThreshold", "breaching")
    # The ceiling the root computes: both reserved concurrencies (dev: 10 + 20) plus 10.
    assert (
        watches("db-connections")[:3] == ("AWS/RDS", "DatabaseConnections", db) and watches("db-connections")[7] == 40
    )


def test_every_alarm_links_its_runbook(applied: dict[str, dict[str, Any]]) -> None:
    headings = anchors(OPERATIONS)
    for name, alarm in applied.items():
        links = re.findall(r"Runbook: docs/operations\.md#([\w-]+)$", alarm.get("AlarmDescription", ""))
        assert len(links) == 1, f"{name}: no runbook link at the end of its description"
        assert links[0] in headings, f"{name}: docs/operations.md has no heading for #{links[0]}"


# ---------------------------------------------------------------------------------------------
# No silent delivery failure
# ---------------------------------------------------------------------------------------------


def test_sns_delivery_failures_go_to_an_encrypted_delivery_dlq(stack: dict[str, Any], moto_url: str) -> None:
    sns, sqs = client("sns", moto_url), client("sqs", moto_url)
    outputs = stack["outputs"]
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=outputs["topic_arn"])["Subscriptions"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    delivery = sqs.get_queue_attributes(QueueUrl=outputs["delivery_dlq_url"], AttributeNames=["All"])["Attributes"]
    queue = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": delivery["QueueArn"]}
    assert delivery["KmsMasterKeyId"] == queue["KmsMasterKeyId"]
    assert customer_managed_rotating(moto_url, delivery["KmsMasterKeyId"])
    assert int(delivery["MessageRetentionPeriod"]) == 14 * 24 * 3600
    statements = json.loads(delivery["Policy"])["Statement"]
    [allow] = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "sns.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": outputs["topic_arn"]}}
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# ---------------------------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------------------------


def test_the_dashboard_shows_each_slos_budget_and_burn_rate(stack: dict[str, Any], moto_url: str) -> None:
    cloudwatch = client("cloudwatch", moto_url)
    body = json.loads(cloudwatch.get_dashboard(DashboardName=stack["outputs"]["dashboard_name"])["DashboardBody"])
    widgets = [w["properties"] for w in body["widgets"]]
    for slo, expected in SLOS.items():
        [budget] = [w for w in widgets if w["title"].startswith(f"{slo}: error budget left")]
        assert budget["view"] == "singleValue" and budget["start"] == "-P28D" and budget["setPeriodToTimeRange"]
        [expression] = [m[0]["expression"] for m in budget["metrics"] if isinstance(m[0], dict)]
        [metric] = [m for m in budget["metrics"] if not isinstance(m[0], dict)]
        assert metric[:2] == [expected["namespace"], expected["metric"]] and metric[-1]["stat"] == expected["stat"]
        budget_fraction = 1 - expected["objective"]
        # Half the budget spent -> 50 % left.
        half = 100 * (1 - budget_fraction / 2) if expected["stat"].startswith("PR") else budget_fraction / 2
        assert _evaluate(expression.replace(metric[-1]["id"], "m"), half) == pytest.approx(50.0)
        [burn] = [w for w in widgets if w["title"].startswith(f"{slo}: burn rate")]
        assert {a["value"] for a in burn["annotations"]["horizontal"]} == {14.4, 6}
        periods = sorted(m[-1]["period"] for m in burn["metrics"] if not isinstance(m[0], dict))
        assert periods == [300, 3600]


# ---------------------------------------------------------------------------------------------
# docs/operations.md: the alarm table is these alarms
# ---------------------------------------------------------------------------------------------

COMPARISON = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _seconds(value: int) -> str:
    if value % 3600 == 0:
        return f"{value // 3600} h"
    return f"{value // 60} min" if value % 60 == 0 else f"{value} s"


def _generic(text: str) -> str:
    return text.replace(NAME, "<name>").replace(REGION, "<region>")


def _row(alarm: dict[str, Any], topic: str) -> tuple[int, str]:
    name = _generic(alarm["AlarmName"])
    actions = alarm.get("AlarmActions", [])
    notifies = "ALARM, OK" if actions == alarm.get("OKActions") == [topic] else ("none" if not actions else "?")
    if alarm["_type"] == "composite":
        rule = _generic(alarm["AlarmRule"]).replace('"', "")
        return 0, f"| `{name}` | {notifies} | {rule} | | | | | |"
    [stat] = _metric_stats(alarm)
    metric = f"{stat['Metric']['Namespace']} `{stat['Metric']['MetricName']}`"
    ordered = sorted(stat["Metric"]["Dimensions"], key=lambda d: str(d["Name"]))
    dimensions = ", ".join(f"{d['Name']}=`{_generic(d['Value'])}`" for d in ordered)
    if alarm.get("Metrics"):
        [expression] = [q["Expression"] for q in alarm["Metrics"] if q.get("Expression")]
        metric = f"`{expression.replace(stat_id(alarm), 'm')}`, m = {metric}"
    datapoints = f"{alarm.get('DatapointsToAlarm') or alarm['EvaluationPeriods']} of {alarm['EvaluationPeriods']}"
    condition = f"{COMPARISON[alarm['ComparisonOperator']]} {_number(alarm['Threshold'])}"
    group = 2 if alarm.get("Metrics") else 1
    return group, (
        f"| `{name}` | {notifies} | {metric} | {dimensions} | {stat['Stat']} | {_seconds(stat['Period'])} | "
        f"{datapoints} | {condition}, missing data {alarm['TreatMissingData']} |"
    )


def render_table(applied: dict[str, dict[str, Any]], topic: str) -> str:
    header = [
        "| alarm | notifies | metric or rule | dimensions | statistic | period | datapoints | condition |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = sorted(_row(alarm, topic) for alarm in applied.values())
    return "\n".join(header + [row for _, row in rows]) + "\n"


def test_the_alarm_table_of_the_docs_is_the_applied_alarms(
    stack: dict[str, Any], applied: dict[str, dict[str, Any]]
) -> None:
    expected = render_table(applied, stack["outputs"]["alarm_topic_arn"])
    text = OPERATIONS.read_text(encoding="utf-8")
    assert TABLE_BEGIN in text and TABLE_END in text, "docs/operations.md lacks the alarm table markers"
    documented = text.split(TABLE_BEGIN, 1)[1].split("-->", 1)[1].split(TABLE_END, 1)[0].strip() + "\n"
    if documented != expected:
        TABLE_OUT.parent.mkdir(parents=True, exist_ok=True)
        TABLE_OUT.write_text(expected, encoding="utf-8")
    assert documented == expected, f"docs/operations.md's alarm table differs from the applied alarms: see {TABLE_OUT}"
