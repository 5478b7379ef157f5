"""What the dev root (iac/envs + dev.tfvars) creates when applied against moto (harness: tests/iac/emulator.py).

Run by `make iac-emulate` (pytest -m emulate tests/iac); the default pytest run deselects it.

The Terraform code is applied unchanged. Only *_override.tf files written into a temporary copy
point the provider at the emulator and leave out what moto cannot model:
  - iac/envs: local state in the temp dir, static test credentials, every endpoint -> moto.
  - modules/functions: AWS Signer signing jobs and the Lambda code-signing config (moto implements
    neither StartSigningJob nor CreateCodeSigningConfig), so the functions deploy the unsigned
    package from the artifact bucket; the artifact bucket policy (moto evaluates its
    aws:SecureTransport deny as a plain deny, so every upload would be refused).
  - modules/pubsub: the DLQ's redrive-allow policy (moto neither stores nor returns it, and the
    provider waits for it to appear).
Before the apply, the permissions boundary policy is created in the emulator from docs/terraform.md, as the
bootstrap does in an account (dev.tfvars names it; every role of the stack must carry it).
Not exercised: a message flowing topic -> queue -> Lambda (moto's event source mapping invokes the
function, which needs Docker), Performance Insights and Lambda DeadLetterConfig (moto does not
report them; checkov checks them statically). Deletion protection of the database stays on; the
test turns it off through the API before `terraform destroy`, as an operator would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from rampart.api.cursor_keys import parse_version
from tests.iac.emulator import REGION, client, customer_managed_rotating, progress

pytestmark = pytest.mark.emulate


# ---------------------------------------------------------------------------------------------
# The whole stack
# ---------------------------------------------------------------------------------------------


def test_whole_stack_applied(stack: dict[str, Any]) -> None:
    outputs = stack["outputs"]
    assert stack["resources"] >= 100, "the emulator apply must cover the whole stack"
    for name in ("api_url", "topic_arn", "queue_url", "dlq_url", "ingest_function_name", "api_function_name"):
        assert outputs.get(name), f"output {name} is empty"


# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------


def test_database_private_iam_auth_encrypted_with_cmk(stack: dict[str, Any], moto_url: str) -> None:
    rds = client("rds", moto_url)
    db = rds.describe_db_instances(DBInstanceIdentifier=stack["outputs"]["db_instance_identifier"])["DBInstances"][0]
    assert db["PubliclyAccessible"] is False
    assert db["IAMDatabaseAuthenticationEnabled"] is True
    assert db["StorageEncrypted"] is True
    assert customer_managed_rotating(moto_url, db["KmsKeyId"])
    assert db["Engine"] == "postgres" and db["EngineVersion"].startswith(("16", "17"))
    assert db["DeletionProtection"] is True
    assert db["CopyTagsToSnapshot"] is True
    assert db["BackupRetentionPeriod"] >= 7
    # moto does not report Performance Insights; checkov CKV_AWS_353/CKV_AWS_354 cover it statically.
    assert db["MonitoringInterval"] > 0
    assert set(db["EnabledCloudwatchLogsExports"]) >= {"postgresql"}
    assert db["AutoMinorVersionUpgrade"] is True
    assert db["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    secret = db["MasterUserSecret"]
    assert secret["KmsKeyId"] == db["KmsKeyId"], "master secret must be on the database CMK"


def test_database_only_in_private_subnets(stack: dict[str, Any], moto_url: str) -> None:
    rds, ec2 = client("rds", moto_url), client("ec2", moto_url)
    db = rds.describe_db_instances(DBInstanceIdentifier=stack["outputs"]["db_instance_identifier"])["DBInstances"][0]
    subnet_ids = [s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]]
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) >= 2
    assert all(s["MapPublicIpOnLaunch"] is False for s in subnets)
    vpc_id = subnets[0]["VpcId"]
    assert not ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])[
        "InternetGateways"
    ]
    assert not ec2.describe_nat_gateways(Filter=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]


def test_database_parameter_group_forces_tls_and_logs(stack: dict[str, Any], moto_url: str) -> None:
    rds = client("rds", moto_url)
    db = rds.describe_db_instances(DBInstanceIdentifier=stack["outputs"]["db_instance_identifier"])["DBInstances"][0]
    group = db["DBParameterGroups"][0]["DBParameterGroupName"]
    params = {
        p["ParameterName"]: p.get("ParameterValue")
        for p in rds.describe_db_parameters(DBParameterGroupName=group, Source="user")["Parameters"]
    }
    assert params["rds.force_ssl"] == "1"
    assert params["log_statement"] == "ddl"
    assert "log_min_duration_statement" in params


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------


def test_security_groups_attached_and_narrow(stack: dict[str, Any], moto_url: str) -> None:
    rds, lam, ec2 = client("rds", moto_url), client("lambda", moto_url), client("ec2", moto_url)
    outputs = stack["outputs"]
    db = rds.describe_db_instances(DBInstanceIdentifier=outputs["db_instance_identifier"])["DBInstances"][0]
    db_groups = {g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]}
    fn_groups: set[str] = set()
    for name in (outputs["ingest_function_name"], outputs["api_function_name"]):
        fn_groups |= set(lam.get_function_configuration(FunctionName=name)["VpcConfig"]["SecurityGroupIds"])
    assert len(db_groups) == 1 and len(fn_groups) == 1
    (db_group,) = db_groups
    (fn_group,) = fn_groups
    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(GroupIds=[db_group, fn_group])["SecurityGroups"]}
    ingress = groups[db_group]["IpPermissions"]
    assert [(p["FromPort"], p["ToPort"]) for p in ingress] == [(5432, 5432)]
    assert [pair["GroupId"] for pair in ingress[0]["UserIdGroupPairs"]] == [fn_group]
    assert not ingress[0].get("IpRanges"), "the database admits no CIDR"
    egress_ports = sorted((p["FromPort"], p["ToPort"]) for p in groups[fn_group]["IpPermissionsEgress"])
    assert egress_ports == [(443, 443), (5432, 5432)]
    assert all(not p.get("IpRanges") for p in groups[fn_group]["IpPermissionsEgress"])
    vpc_id = groups[db_group]["VpcId"]
    default = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []


def test_vpc_endpoints_and_flow_logs(stack: dict[str, Any], moto_url: str) -> None:
    ec2 = client("ec2", moto_url)
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    services = {e["ServiceName"].rsplit(".", 1)[-1] for e in endpoints if e["VpcEndpointType"] == "Interface"}
    assert {"sqs", "secretsmanager", "kms", "sts", "logs"} <= services
    assert all(e["PrivateDnsEnabled"] for e in endpoints)
    flow_logs = ec2.describe_flow_logs()["FlowLogs"]
    assert any(f["LogDestinationType"] == "cloud-watch-logs" and f["TrafficType"] == "ALL" for f in flow_logs)


# ---------------------------------------------------------------------------------------------
# Messaging
# ---------------------------------------------------------------------------------------------


def test_queues_on_the_cmk_with_dlq_redrive(stack: dict[str, Any], moto_url: str) -> None:
    sqs = client("sqs", moto_url)
    outputs = stack["outputs"]
    queue = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["dlq_url"], AttributeNames=["All"])["Attributes"]
    assert queue["KmsMasterKeyId"] == dlq["KmsMasterKeyId"]
    assert customer_managed_rotating(moto_url, queue["KmsMasterKeyId"])
    assert not queue["KmsMasterKeyId"].startswith("alias/aws/")
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert 2 <= int(redrive["maxReceiveCount"]) <= 20
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 24 * 3600
    policy = json.loads(queue["Policy"])
    allow = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert len(allow) == 1
    assert allow[0]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert allow[0]["Condition"]["ArnEquals"]["aws:SourceArn"] == outputs["topic_arn"]


def test_topic_on_the_cmk_and_raw_subscription(stack: dict[str, Any], moto_url: str) -> None:
    sns = client("sns", moto_url)
    topic_arn = stack["outputs"]["topic_arn"]
    attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert customer_managed_rotating(moto_url, attributes["KmsMasterKeyId"])
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert [s["Protocol"] for s in subscriptions] == ["sqs"]
    sub = sns.get_subscription_attributes(SubscriptionArn=subscriptions[0]["SubscriptionArn"])["Attributes"]
    assert sub["RawMessageDelivery"] == "true"


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


def test_functions_configuration(stack: dict[str, Any], moto_url: str) -> None:
    lam = client("lambda", moto_url)
    outputs = stack["outputs"]
    for name, handler in (
        (outputs["ingest_function_name"], "rampart.ingest.handler.lambda_handler"),
        (outputs["api_function_name"], "rampart.api.handler.lambda_handler"),
    ):
        config = lam.get_function(FunctionName=name)
        fn = config["Configuration"]
        assert fn["Runtime"] == "python3.12"
        assert fn["Architectures"] == ["arm64"]
        assert fn["Handler"] == handler
        assert fn["TracingConfig"]["Mode"] == "Active"
        assert customer_managed_rotating(moto_url, fn["KMSKeyArn"])
        assert len(fn["VpcConfig"]["SubnetIds"]) >= 2
        assert config["Concurrency"]["ReservedConcurrentExecutions"] >= 1
        env = fn["Environment"]["Variables"]
        assert env["RAMPART_DB_AUTH"] == "iam" and env["RAMPART_DB_SSLMODE"] == "verify-full"
        assert env["RAMPART_DB_SSLROOTCERT"] == "/var/task/rampart/certs/rds-ca.pem"
        assert env["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
        assert not any("PASSWORD" in key and key != "RAMPART_DB_PASSWORD_SECRET_ARN" for key in env)
        alias = lam.get_alias(FunctionName=name, Name="live")
        assert alias["FunctionVersion"] != "$LATEST"
    ingest = lam.get_function_configuration(FunctionName=outputs["ingest_function_name"])
    assert ingest["Environment"]["Variables"]["RAMPART_DLQ_URL"] == outputs["dlq_url"]
    # moto does not report DeadLetterConfig; checkov CKV_AWS_116 covers it statically.


def test_event_source_mapping(stack: dict[str, Any], moto_url: str) -> None:
    lam, sqs = client("lambda", moto_url), client("sqs", moto_url)
    queue_arn = sqs.get_queue_attributes(QueueUrl=stack["outputs"]["queue_url"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    mappings = lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    assert len(mappings) == 1
    mapping = mappings[0]
    alias = lam.get_alias(FunctionName=stack["outputs"]["ingest_function_name"], Name="live")
    unqualified = alias["AliasArn"].rsplit(":", 1)[0]
    # The mapping targets the live alias (moto reports the version the alias points to).
    assert mapping["FunctionArn"] in {alias["AliasArn"], f"{unqualified}:{alias['FunctionVersion']}"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] >= 1
    assert mapping["MaximumBatchingWindowInSeconds"] >= 1
    assert mapping["ScalingConfig"]["MaximumConcurrency"] >= 2


def role_statements(moto_url: str, role_name: str) -> list[dict[str, Any]]:
    iam = client("iam", moto_url)
    statements: list[dict[str, Any]] = []
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(document, str):
            document = json.loads(document)
        for statement in document["Statement"]:
            statement["Action"] = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            resource = statement["Resource"]
            statement["Resource"] = [resource] if isinstance(resource, str) else resource
            statements.append(statement)
    return statements


@pytest.mark.parametrize(("function", "db_user"), [("ingest", "rampart_ingest"), ("api", "rampart_api")])
def test_function_roles_least_privilege(stack: dict[str, Any], moto_url: str, function: str, db_user: str) -> None:
    rds, lam, iam = client("rds", moto_url), client("lambda", moto_url), client("iam", moto_url)
    outputs = stack["outputs"]
    fn = lam.get_function_configuration(FunctionName=outputs[f"{function}_function_name"])
    role_name = fn["Role"].rsplit("/", 1)[-1]
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    statements = role_statements(moto_url, role_name)
    actions = [a for s in statements for a in s["Action"]]
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    db = rds.describe_db_instances(DBInstanceIdentifier=outputs["db_instance_identifier"])["DBInstances"][0]
    connect = [s for s in statements if "rds-db:connect" in s["Action"]]
    expected = f"arn:aws:rds-db:{REGION}:{db['DBInstanceArn'].split(':')[4]}:dbuser:{db['DbiResourceId']}/{db_user}"
    assert [s["Resource"] for s in connect] == [[expected]]
    wildcard_resources = {a for s in statements if s["Resource"] == ["*"] for a in s["Action"]}
    assert wildcard_resources <= {
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    if function == "ingest":
        send = [s for s in statements if "sqs:SendMessage" in s["Action"]]
        assert [s["Resource"] for s in send] == [
            [f"arn:aws:sqs:{REGION}:{expected.split(':')[4]}:rampart-dev-events-dlq"]
        ]
        assert not any("secretsmanager:GetSecretValue" in s["Action"] for s in statements)
    else:
        secrets = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
        assert len(secrets) == 1 and secrets[0]["Resource"][0].startswith(f"arn:aws:secretsmanager:{REGION}:")
        assert not any(a.startswith("sqs:") for a in actions)


def test_cursor_key_generated_and_not_in_state(stack: dict[str, Any], moto_url: str) -> None:
    lam, sm = client("lambda", moto_url), client("secretsmanager", moto_url)
    env = lam.get_function_configuration(FunctionName=stack["outputs"]["api_function_name"])["Environment"]
    secret_arn = env["Variables"]["RAMPART_CURSOR_KEY_SECRET_ARN"]
    value = sm.get_secret_value(SecretId=secret_arn)["SecretString"]
    # The documented format (src/rampart/api/cursor_keys.py): {"current": KEY}, KEY generated by Secrets Manager.
    assert list(json.loads(value)) == ["current"], 'the cursor key secret is not {"current": KEY}'
    [key] = parse_version(value).values()
    assert len(key) == 64 and key.isalnum()
    state = (stack["workdir"] / "terraform.tfstate").read_text()
    assert key not in state and value not in state, "write-only secret leaked into state"


def test_log_groups_one_year_on_cmk(stack: dict[str, Any], moto_url: str) -> None:
    logs = client("logs", moto_url)
    groups = logs.describe_log_groups()["logGroups"]
    names = {g["logGroupName"] for g in groups}
    for expected in (
        f"/aws/lambda/{stack['outputs']['ingest_function_name']}",
        f"/aws/lambda/{stack['outputs']['api_function_name']}",
        "aws-waf-logs-rampart-dev",
        "/aws/apigateway/rampart-dev/access",
        "/aws/vpc/rampart-dev/flow-logs",
    ):
        assert expected in names
    for group in groups:
        assert group.get("retentionInDays", 0) >= 365, group["logGroupName"]
        assert group.get("kmsKeyId"), f"{group['logGroupName']} has no CMK"


# ---------------------------------------------------------------------------------------------
# API and WAF
# ---------------------------------------------------------------------------------------------


def rest_api(moto_url: str) -> dict[str, Any]:
    apis = client("apigateway", moto_url).get_rest_apis()["items"]
    (api,) = [a for a in apis if a["name"] == "rampart-dev"]
    return api


def test_every_api_method_requires_a_key_and_validation(stack: dict[str, Any], moto_url: str) -> None:
    apigw = client("apigateway", moto_url)
    api = rest_api(moto_url)
    assert api["endpointConfiguration"]["types"] == ["REGIONAL"]
    methods = {}
    for resource in apigw.get_resources(restApiId=api["id"], limit=500)["items"]:
        for verb in resource.get("resourceMethods", {}):
            methods[(resource["path"], verb)] = apigw.get_method(
                restApiId=api["id"], resourceId=resource["id"], httpMethod=verb
            )
    assert set(methods) == {
        ("/v1/events", "GET"),
        ("/v1/events/{event_id}", "GET"),
        ("/v1/stats", "GET"),
        ("/v1/health", "GET"),
    }
    for route, method in methods.items():
        assert method["apiKeyRequired"] is True, route
        assert method.get("requestValidatorId"), route
        assert method["methodIntegration"]["type"] == "AWS_PROXY", route
        assert ":function:rampart-dev-api:live/invocations" in method["methodIntegration"]["uri"], route


def test_stage_logs_traces_and_usage_plan(stack: dict[str, Any], moto_url: str) -> None:
    apigw = client("apigateway", moto_url)
    api = rest_api(moto_url)
    stage = apigw.get_stage(restApiId=api["id"], stageName="v1")
    assert stage["tracingEnabled"] is True
    assert stage["accessLogSettings"]["destinationArn"].endswith(":log-group:/aws/apigateway/rampart-dev/access")
    assert "$context.identity.apiKeyId" in stage["accessLogSettings"]["format"]
    assert '$context.identity.apiKey"' not in stage["accessLogSettings"]["format"]
    settings = stage["methodSettings"]["*/*"]
    assert settings["metricsEnabled"] is True and settings["dataTraceEnabled"] is False
    assert settings["throttlingRateLimit"] > 0
    # One usage plan per client tier (tests/iac/test_emulate_pipeline.py checks them and that no key is Terraform's).
    (plan,) = [p for p in apigw.get_usage_plans()["items"] if p["name"] == "rampart-dev-standard"]
    assert plan["throttle"]["rateLimit"] > 0 and plan["quota"]["limit"] > 0
    assert {"apiId": api["id"], "stage": "v1"} in [{k: s[k] for k in ("apiId", "stage")} for s in plan["apiStages"]]


def test_waf_acl_associated_with_stage(stack: dict[str, Any], moto_url: str) -> None:
    waf = client("wafv2", moto_url)
    api = rest_api(moto_url)
    stage_arn = f"arn:aws:apigateway:{REGION}::/restapis/{api['id']}/stages/v1"
    acl = waf.get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]
    assert acl["ARN"] == stack["outputs"]["web_acl_arn"]
    groups = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    } <= groups
    rate = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate and "Block" in rate[0]["Action"]
    logging_config = waf.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    assert logging_config["LogDestinationConfigs"][0].endswith(":log-group:aws-waf-logs-rampart-dev")
    redacted = [f["SingleHeader"]["Name"].lower() for f in logging_config["RedactedFields"]]
    assert redacted == ["x-api-key"]


# ---------------------------------------------------------------------------------------------
# GitHub OIDC
# ---------------------------------------------------------------------------------------------


def test_deploy_role_scoped_to_the_two_functions_and_signing(stack: dict[str, Any], moto_url: str) -> None:
    lam = client("lambda", moto_url)
    outputs = stack["outputs"]
    function_arns = {
        lam.get_function_configuration(FunctionName=outputs[name])["FunctionArn"]
        for name in ("ingest_function_name", "api_function_name")
    }
    statements = role_statements(moto_url, outputs["github_deploy_role_arn"].rsplit("/", 1)[-1])
    lambda_resources = {
        r for s in statements if any(a.startswith("lambda:") for a in s["Action"]) for r in s["Resource"]
    }
    assert lambda_resources == function_arns | {f"{arn}:*" for arn in function_arns}
    actions = {a for s in statements for a in s["Action"]}
    assert {
        "lambda:UpdateFunctionCode",
        "lambda:PublishVersion",
        "lambda:UpdateAlias",
        "signer:StartSigningJob",
    } <= actions
    forbidden = {
        "lambda:CreateFunction",
        "lambda:DeleteFunction",
        "lambda:UpdateFunctionConfiguration",
        "lambda:AddPermission",
    }
    assert not actions & forbidden
    assert not any(a.startswith("iam:") for a in actions)
    assert not [s["Sid"] for s in statements if "*" in s["Resource"]], "every deploy statement names its resources"


def test_every_role_of_the_stack_carries_the_permissions_boundary(stack: dict[str, Any], moto_url: str) -> None:
    iam = client("iam", moto_url)
    roles = [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("rampart-dev-")]
    assert len(roles) >= 7  # ingest, api, deploy, plan, API Gateway CloudWatch, RDS monitoring, flow logs
    for role in roles:
        boundary = iam.get_role(RoleName=role["RoleName"])["Role"].get("PermissionsBoundary", {})
        assert boundary.get("PermissionsBoundaryArn") == stack["boundary_arn"], role["RoleName"]


# ---------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------


# The alarms, their subscribers, the delivery DLQ and the dashboard: tests/iac/test_emulate_alerts.py.


@pytest.fixture(scope="module", autouse=True)
def _timing() -> Iterator[None]:
    yield
    progress("done")
