"""The AWS side of the local twin: a moto server on loopback, provisioned like ``iac/modules/pubsub``.

``python -m rampart.local.aws --ready-fd N`` runs the emulator in its own process (the supervisor starts it),
so its in-memory state is isolated from anything else in the caller's process. :func:`provision` then creates,
through the normal AWS APIs:

- a customer-managed KMS key with rotation and the module's key policy, alias ``alias/<name>-pubsub``;
- the SNS topic ``<name>-events`` encrypted with that key, with the module's topic policy;
- the DLQ ``<name>-events-dlq`` (14 days retention, redrive-allow policy for the queue only);
- the queue ``<name>-events`` (redrive policy to the DLQ with ``maxReceiveCount``, 20 s receive wait);
- the queue policy: ``sqs:SendMessage`` for SNS only when ``aws:SourceArn`` is this topic;
- the subscription topic -> queue with ``RawMessageDelivery=true`` (docs/contracts.md) and its redrive policy
  to the delivery DLQ ``<name>-events-delivery-dlq`` (same key, 14 days; its policy lets SNS send for this topic
  only), where a notification SNS cannot deliver into the queue would go (moto stores the policy; it never fails
  a delivery to an existing queue, so nothing arrives there locally).

moto stores key and resource policies but does not evaluate them (see docs/local.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

from rampart.local.context import ACCOUNT_ID

DEFAULT_REGION = "eu-west-1"


@dataclass(frozen=True)
class PubSubConfig:
    """The inputs of ``iac/modules/pubsub`` that matter locally."""

    name: str = "rampart-local"
    visibility_timeout_seconds: int = 30
    message_retention_seconds: int = 345600
    max_receive_count: int = 5
    kms_data_key_reuse_period_seconds: int = 300


@dataclass(frozen=True)
class PubSubResources:
    region: str
    kms_key_arn: str
    kms_alias: str
    topic_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    subscription_arn: str
    delivery_dlq_url: str = ""
    delivery_dlq_arn: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def client(service: str, endpoint: str, region: str) -> Any:
    """A boto3 client bound to the emulator with dummy credentials, whatever the caller's environment holds."""
    import boto3  # noqa: PLC0415 - boto3 costs ~0.3 s to import; only the paths that talk to AWS pay it
    from botocore.config import Config  # noqa: PLC0415

    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the emulator's dummy credentials  # nosec B106
        aws_session_token="testing",  # noqa: S106
        region_name=region,
    )
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return session.client(service, endpoint_url=endpoint, config=config)  # type: ignore[call-overload]


def _key_policy(topic_arn: str, region: str) -> dict[str, Any]:
    root = f"arn:aws:iam::{ACCOUNT_ID}:root"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "SnsDeliveryToEncryptedQueue",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            },
            {
                "Sid": "UseThroughSnsAndSqsOnly",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:ViaService": [f"sns.{region}.amazonaws.com", f"sqs.{region}.amazonaws.com"]}
                },
            },
        ],
    }


def _deny_insecure(action: str, resource: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def provision(endpoint: str, region: str = DEFAULT_REGION, config: PubSubConfig | None = None) -> PubSubResources:
    """Create the key, topic, queues, policies and subscription (on a fresh emulator)."""
    cfg = config or PubSubConfig()
    kms, sns, sqs = (client(s, endpoint, region) for s in ("kms", "sns", "sqs"))
    topic_name, queue_name, dlq_name = f"{cfg.name}-events", f"{cfg.name}-events", f"{cfg.name}-events-dlq"
    topic_arn = f"arn:aws:sns:{region}:{ACCOUNT_ID}:{topic_name}"
    queue_arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue_name}"

    key = kms.create_key(
        Description=f"{cfg.name} SNS topic and SQS queues",
        KeyUsage="ENCRYPT_DECRYPT",
        Policy=json.dumps(_key_policy(topic_arn, region)),
    )["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    alias = f"alias/{cfg.name}-pubsub"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    key_arn = str(key["Arn"])

    created_topic = sns.create_topic(Name=topic_name, Attributes={"KmsMasterKeyId": key_arn})["TopicArn"]
    if created_topic != topic_arn:
        raise RuntimeError(created_topic)
    topic_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublishByAllowedPrincipals",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
            },
            _deny_insecure("sns:Publish", topic_arn),
        ],
    }
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(topic_policy))

    kms_attrs = {
        "KmsMasterKeyId": key_arn,
        "KmsDataKeyReusePeriodSeconds": str(cfg.kms_data_key_reuse_period_seconds),
    }
    dlq_url = sqs.create_queue(
        QueueName=dlq_name,
        Attributes={
            "MessageRetentionPeriod": "1209600",
            **kms_attrs,
            "RedriveAllowPolicy": json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [queue_arn]}),
        },
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={
            "VisibilityTimeout": str(cfg.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(cfg.message_retention_seconds),
            "ReceiveMessageWaitTimeSeconds": "20",
            **kms_attrs,
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": cfg.max_receive_count}),
        },
    )["QueueUrl"]
    queue_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SendFromThisTopicOnly",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            },
            _deny_insecure("sqs:*", queue_arn),
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(queue_policy)})
    dlq_policy = {"Version": "2012-10-17", "Statement": [_deny_insecure("sqs:*", dlq_arn)]}
    sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"Policy": json.dumps(dlq_policy)})

    delivery_dlq_url, delivery_dlq_arn = _delivery_dlq(sqs, f"{cfg.name}-events-delivery-dlq", topic_arn, kms_attrs)
    subscription_arn = sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription_arn,
        AttributeName="RedrivePolicy",
        AttributeValue=json.dumps({"deadLetterTargetArn": delivery_dlq_arn}),
    )
    return PubSubResources(
        region=region,
        kms_key_arn=key_arn,
        kms_alias=alias,
        topic_arn=topic_arn,
        queue_url=str(queue_url),
        queue_arn=queue_arn,
        dlq_url=str(dlq_url),
        dlq_arn=str(dlq_arn),
        subscription_arn=str(subscription_arn),
        delivery_dlq_url=delivery_dlq_url,
        delivery_dlq_arn=delivery_dlq_arn,
    )


def _delivery_dlq(sqs: Any, name: str, topic_arn: str, kms_attrs: dict[str, str]) -> tuple[str, str]:
    """The subscription's dead-letter queue, as iac/modules/pubsub creates it: (url, arn)."""
    url = str(
        sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "1209600", **kms_attrs})["QueueUrl"]
    )
    arn = str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SnsRedriveFromThisTopicOnly",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            },
            _deny_insecure("sqs:*", arn),
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return url, arn


# -- the emulator process ------------------------------------------------------------------------------------------
def _patch_moto_sqs() -> None:
    """Two fixes to moto's SQS, for the emulator process only.

    Correctness: ``Queue.delete_message`` rebuilds the message list without the lock that ``add_message`` takes,
    so a message sent while another is being deleted can vanish (seen: 4 of 5,000 events lost under load).
    Deleting under the same lock makes the two atomic with respect to each other.

    Speed: moto reads the clock through datetime arithmetic for every message on every send (it computes all
    queue attributes, including the in-flight count, to look up ContentBasedDeduplication). With thousands of
    messages queued that makes a 5,000-event run take minutes. Same semantics, cheaper clock.
    """
    import time  # noqa: PLC0415

    import moto.sqs.models as sqs_models  # noqa: PLC0415

    unlocked_delete = sqs_models.Queue.delete_message

    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            unlocked_delete(self, receipt_handle)

    sqs_models.Queue.delete_message = delete_message  # type: ignore[method-assign]

    original = getattr(sqs_models, "unix_time_millis")  # noqa: B009 - not re-exported by moto's typing

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(original(dt))

    setattr(sqs_models, "unix_time_millis", unix_time_millis)  # noqa: B010


def serve(host: str = "127.0.0.1", port: int = 0, ready_fd: int | None = None) -> int:
    """Run moto on loopback until SIGTERM/SIGINT or until the parent process goes away."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise SystemExit("the emulator binds loopback addresses only")
    import logging  # noqa: PLC0415

    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    _patch_moto_sqs()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per AWS call
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    report_ready(ready_fd, {"endpoint": f"http://{bound_host}:{bound_port}"})
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:  # the supervisor died without stopping us: do not linger
            break
    server.stop()
    return 0


def report_ready(ready_fd: int | None, info: dict[str, Any]) -> None:
    """Tell the supervisor that this process is ready (one JSON line on the inherited pipe)."""
    line = json.dumps(info) + "\n"
    if ready_fd is None:
        sys.stdout.write(line)
        sys.stdout.flush()
        return
    with os.fdopen(ready_fd, "w", encoding="utf-8") as fh:
        fh.write(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rampart.local.aws", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    return serve(args.host, args.port, args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
