"""Create every resource of infrastructure/definitions.py in an AWS emulation (moto) with boto3.

Used by local mode (`make run`) and by the integration, workflow and e2e tests. The CDK stack is built
from the same definitions, so the two cannot drift.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from infrastructure import definitions as d

ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/boomerang-local"


@dataclass
class Resources:
    table_name: str
    bucket_name: str
    queue_urls: dict[str, str]
    dlq_urls: dict[str, str]
    event_bus_name: str
    state_machine_arns: dict[str, str]
    function_arns: dict[str, str]
    event_rule_arns: dict[str, str] = field(default_factory=dict)
    stream_arn: str = ""  # the table's stream: the outbox (no event source mapping here, see local/outbox.py)

    def env(self) -> dict[str, str]:
        return {
            "TABLE_NAME": self.table_name,
            "BUCKET_NAME": self.bucket_name,
            "TRACKING_QUEUE_URL": self.queue_urls[d.TRACKING_QUEUE.name],
            "EXPORTS_QUEUE_URL": self.queue_urls[d.EXPORT_QUEUE.name],
            "WEBHOOKS_QUEUE_URL": self.queue_urls[d.WEBHOOK_QUEUE.name],
            "EVENT_BUS_NAME": self.event_bus_name,
            "PROCESSING_STATE_MACHINE_ARN": self.state_machine_arns[d.PROCESSING.name],
            "REFUND_STATE_MACHINE_ARN": self.state_machine_arns[d.REFUND.name],
        }


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def _queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def _allow_send(sqs: Any, url: str, statement: dict[str, Any]) -> None:
    """Add a statement to the queue's policy (several senders may share a queue: the policy is one document)."""
    raw = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")
    policy: dict[str, Any] = json.loads(raw) if raw else {"Version": "2012-10-17", "Statement": []}
    if statement in policy["Statement"]:
        return
    policy["Statement"].append(statement)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})


def _event_rules(events: Any, sqs: Any, bus: str, queue_urls: dict[str, str]) -> dict[str, str]:
    """definitions.EVENT_RULES on the bus: the rule with its pattern, the queue as its target, a queue policy that
    lets EventBridge send for this rule only (as CDK's SqsQueue target does). moto delivers to the queue."""
    arns: dict[str, str] = {}
    for r in d.EVENT_RULES:
        arn = events.put_rule(Name=r.name, EventBusName=bus, EventPattern=json.dumps(r.pattern()), State="ENABLED")[
            "RuleArn"
        ]
        url = queue_urls[r.queue.name]
        queue_arn = _queue_arn(sqs, url)
        _allow_send(
            sqs,
            url,
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": arn}},
            },
        )
        events.put_targets(Rule=r.name, EventBusName=bus, Targets=[{"Id": r.queue.name, "Arn": queue_arn}])
        arns[r.name] = arn
    return arns


def _bucket_notifications(s3: Any, sqs: Any, bucket: str, queue_urls: dict[str, str]) -> None:
    """definitions.BUCKET_NOTIFICATIONS: a queue policy that lets S3 (this bucket only) send, then the bucket's
    notification configuration (one put: it replaces the whole configuration). S3 (and moto) send `s3:TestEvent`."""
    if not d.BUCKET_NOTIFICATIONS:
        return
    bucket_arn = f"arn:aws:s3:::{bucket}"
    configurations = []
    for n in d.BUCKET_NOTIFICATIONS:
        url = queue_urls[n.queue.name]
        queue_arn = _queue_arn(sqs, url)
        _allow_send(
            sqs,
            url,
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": bucket_arn}},
            },
        )
        configurations.append(
            {
                "QueueArn": queue_arn,
                "Events": list(n.events),
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": n.prefix}]}},
            }
        )
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configurations}
    )


def provision(
    session: Any,
    *,
    prefix: str = "boomerang",
    settings_overrides: dict[str, int] | None = None,
    sender_email: str = "returns@boomerang.example",
) -> Resources:
    ddb = session.client("dynamodb")
    table_name = f"{prefix}-table"
    t = d.TABLE
    attrs = {t.pk, t.sk, *(i.pk for i in t.indexes), *(i.sk for i in t.indexes)}
    stream = {"StreamEnabled": True, "StreamViewType": t.stream_view_type} if t.stream_view_type else None
    table = ddb.create_table(
        TableName=table_name,
        **({"StreamSpecification": stream} if stream else {}),
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(attrs)],
        KeySchema=[{"AttributeName": t.pk, "KeyType": "HASH"}, {"AttributeName": t.sk, "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": i.name,
                "KeySchema": [
                    {"AttributeName": i.pk, "KeyType": "HASH"},
                    {"AttributeName": i.sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": i.projection},
            }
            for i in t.indexes
        ],
    )
    if t.ttl_attribute:
        ddb.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": t.ttl_attribute}
        )

    bucket = f"{prefix}-files"
    s3 = session.client("s3")
    region = s3.meta.region_name
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    # the same expiry per key prefix as the CDK stack's bucket (moto keeps the rules; it does not expire objects)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=d.file_lifecycle_configuration())

    sqs = session.client("sqs")
    queue_urls: dict[str, str] = {}
    dlq_urls: dict[str, str] = {}
    for q in d.QUEUES:
        dlq_url = sqs.create_queue(QueueName=q.dlq_name)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_urls[q.name] = sqs.create_queue(
            QueueName=q.name,
            Attributes={
                "VisibilityTimeout": str(q.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": q.max_receive_count}),
            },
        )["QueueUrl"]
        dlq_urls[q.name] = dlq_url
    _bucket_notifications(s3, sqs, bucket, queue_urls)

    events = session.client("events")
    events.create_event_bus(Name=d.EVENT_BUS_NAME)
    event_rule_arns = _event_rules(events, sqs, d.EVENT_BUS_NAME, queue_urls)
    session.client("ses").verify_email_identity(EmailAddress=sender_email)

    iam = session.client("iam")
    try:
        role_arn = iam.create_role(
            RoleName="boomerang-local",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role_arn = iam.get_role(RoleName="boomerang-local")["Role"]["Arn"]
    lam = session.client("lambda")
    code = _zip()
    function_arns: dict[str, str] = {}
    for fn in d.FUNCTIONS:
        function_arns[fn.name] = lam.create_function(
            FunctionName=f"boomerang-{fn.name}",
            Runtime="python3.11",
            Role=role_arn,
            Handler="handler.handler",
            Code={"ZipFile": code},
            Timeout=fn.timeout_seconds,
            MemorySize=fn.memory_mb,
        )["FunctionArn"]

    sfn = session.client("stepfunctions")
    arns: dict[str, str] = {}
    for sm in d.STATE_MACHINES:
        arns[sm.name] = sfn.create_state_machine(
            name=sm.name,
            definition=sm.definition(function_arns, settings_overrides),
            roleArn=role_arn,
        )["stateMachineArn"]

    return Resources(
        table_name=table_name,
        bucket_name=bucket,
        queue_urls=queue_urls,
        dlq_urls=dlq_urls,
        event_bus_name=d.EVENT_BUS_NAME,
        state_machine_arns=arns,
        function_arns=function_arns,
        event_rule_arns=event_rule_arns,
        stream_arn=table["TableDescription"].get("LatestStreamArn", ""),
    )
