"""The CDK stack, synthesized once in-process: built from infrastructure/definitions.py, least privilege, lint-clean.

The synth packages the Chalice API (`chalice package`, wheels from PyPI on the first run, then its cache in
.chalice/deployments) and builds the functions' layer (pip, cached in infrastructure/build/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from chalicelib.config import Settings
from infrastructure import definitions as d
from infrastructure.assets import LAMBDA_GLIBC_MINOR
from infrastructure.stack import (
    NOTIFICATIONS_HANDLER_ID,
    SECRETS_PREFIX,
    BoomerangStack,
    ConfigurationError,
)

OPERATOR_KEY_SHA256 = "ab" * 32
SENDER = "returns@shop.example"
CONTEXT = {"operatorKeySha256": OPERATOR_KEY_SHA256, "senderEmail": SENDER, "publicBaseUrl": "https://returns.example"}

# Actions AWS offers no resource-level permission for, so "Resource": "*" is the only possible scope.
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # Step Functions' log delivery to CloudWatch Logs (added by CDK for `logs=`; documented as "*" only).
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # granted with a DynamoDB stream event source (the outbox's); ListStreams has no resource-level permission
    "dynamodb:ListStreams",
}
# cfn-lint findings we accept, with the reason.
CFN_LINT_IGNORED = {
    # "dependency already enforced by a GetAtt": CDK adds DependsOn on a function's role next to the GetAtt; harmless.
    "W3005",
}


@dataclass
class Synth:
    stack: BoomerangStack
    template: Template
    json: dict[str, Any]
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.json["Resources"]
        return resources

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_}

    def logical_id(self, construct: Any) -> str:
        child = construct.node.default_child if not isinstance(construct, cdk.CfnElement) else construct
        return str(self.stack.resolve(child.logical_id))

    def statements_of_role(self, role_logical_id: str) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = []
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
                statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return statements


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    cdk_json = json.loads((d.ROOT / "infrastructure" / "cdk.json").read_text())
    app = cdk.App(
        context={**cdk_json.get("context", {}), **CONTEXT},  # as `cdk synth` would
        outdir=str(outdir),
        # CDK's own template validation takes ~18 s here; test_cfn_lint_finds_nothing checks the same and more.
        builtin_cloud_formation_validation=False,
    )
    stack = BoomerangStack(app, "Boomerang")
    template = Template.from_stack(stack)  # also fails on a dependency cycle
    yield Synth(stack, template, template.to_json(), outdir)
    shutil.rmtree(outdir, ignore_errors=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _render(value: Any) -> str:
    """A CloudFormation string expression as text: literals kept, each GetAtt X.Arn as <X>, Refs as <Ref:X>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_render(p) for p in parts)
    if "Fn::GetAtt" in value:
        return f"<{value['Fn::GetAtt'][0]}>"
    if "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    raise AssertionError(f"unexpected expression {value}")


# -- state ---------------------------------------------------------------------------------------------------------


def test_table_keys_indexes_and_ttl_come_from_the_definitions(synth: Synth) -> None:
    t = d.TABLE
    synth.template.resource_count_is("AWS::DynamoDB::Table", 1)
    synth.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": t.pk, "KeyType": "HASH"}, {"AttributeName": t.sk, "KeyType": "RANGE"}],
            "TimeToLiveSpecification": {"AttributeName": t.ttl_attribute, "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    indexes = {
        i["IndexName"]: (
            [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]],
            i["Projection"]["ProjectionType"],
        )
        for i in table["Properties"]["GlobalSecondaryIndexes"]
    }
    assert indexes == {i.name: ([(i.pk, "HASH"), (i.sk, "RANGE")], i.projection) for i in t.indexes}
    assert indexes["gsi4"] == ([("gsi4pk", "HASH"), ("gsi4sk", "RANGE")], "KEYS_ONLY")  # the sweeper's, keys only
    assert table["DeletionPolicy"] == "Retain"


def test_bucket_is_private_encrypted_and_ssl_only(synth: Synth) -> None:
    synth.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        },
    )
    synth.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_personal_data_in_the_bucket_expires_by_key_prefix(synth: Synth) -> None:
    """Labels after 180 days, photos of every kind (and their thumbnails) after the 3-year retention plus a year (a
    rule counts from the upload), exports after 7 days; docs/privacy.md gives the same periods."""
    rules = synth.resources[synth.logical_id(synth.stack.bucket)]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiry = {r["Prefix"]: r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r}
    assert expiry == {
        "labels/": 180,
        "photos/": 1460,
        "parcels/": 1460,
        "customer/": 1460,
        "thumbs/": 1460,
        "exports/": 7,
    }
    # every prefix the bucket's objects are written under expires (a new prefix needs a rule)
    assert set(expiry) == {
        d.LABELS_PREFIX,
        d.PHOTOS_PREFIX,
        d.PARCEL_PHOTOS_PREFIX,
        d.CUSTOMER_PHOTOS_PREFIX,
        d.THUMBNAILS_PREFIX,
        d.EXPORT_PREFIX,
    }
    assert all(r["Status"] == "Enabled" for r in rules)
    (abort,) = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert "Prefix" not in abort and abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    cheaper = {r["Prefix"]: r["Transitions"] for r in rules if "Transitions" in r}
    ia = [{"StorageClass": "STANDARD_IA", "TransitionInDays": 90}]
    assert cheaper == {"labels/": ia, "photos/": ia}
    # the same rules as the local stack's (tests/integration/test_file_lifecycle.py)
    assert [r["Id"] for r in rules] == [r.rule_id for r in d.FILE_LIFECYCLE]


def test_every_queue_has_an_encrypted_dlq_with_the_defined_receive_count(synth: Synth) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    by_name = {q["Properties"]["QueueName"]: (logical, q["Properties"]) for logical, q in queues.items()}
    assert set(by_name) == {n for q in d.QUEUES for n in (q.name, q.dlq_name)} | {d.OUTBOX.dlq_name}
    for q in d.QUEUES:
        _, props = by_name[q.name]
        dlq_logical, dlq_props = by_name[q.dlq_name]
        assert props["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_logical, "Arn"]},
            "maxReceiveCount": q.max_receive_count,
        }
        assert props["VisibilityTimeout"] == q.visibility_timeout_seconds
        assert props["SqsManagedSseEnabled"] is True
        assert dlq_props["SqsManagedSseEnabled"] is True


def _queue_mappings(synth: Synth) -> list[dict[str, Any]]:
    queues = {synth.logical_id(q) for q in synth.stack.queues.values()}
    return [
        m
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"].get("Fn::GetAtt", [None])[0] in queues
    ]


def test_queue_consumers_report_partial_batch_failures(synth: Synth) -> None:
    mappings = _queue_mappings(synth)
    assert len(mappings) == len(synth.of_type("AWS::Lambda::EventSourceMapping")) - 1  # + the outbox's stream
    consumed = [q for q in d.QUEUES if q.consumer]
    assert len(mappings) == len(consumed)
    for q in consumed:
        queue = synth.logical_id(synth.stack.queues[q.name])
        function = synth.logical_id(synth.stack.functions[q.consumer or ""])
        (mapping,) = [m for m in mappings if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}]
        assert mapping["Properties"]["FunctionName"] == {"Ref": function}
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["Properties"]["BatchSize"] == q.batch_size


def test_queue_visibility_outlasts_its_consumer(synth: Synth) -> None:
    """Lambda refuses an SQS event source whose visibility timeout is shorter than the function's timeout."""
    timeouts = {fn.name: fn.timeout_seconds for fn in d.FUNCTIONS}
    for q in d.QUEUES:
        if q.consumer:
            assert q.visibility_timeout_seconds >= timeouts[q.consumer], q.name


def test_photo_uploads_are_announced_on_the_photo_queue(synth: Synth) -> None:
    bucket = synth.logical_id(synth.stack.bucket)
    (config,) = synth.of_type("Custom::S3BucketNotifications").values()
    assert config["Properties"]["BucketName"] == {"Ref": bucket}
    expected = [
        {
            "Events": list(n.events),
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": n.prefix}]}},
            "QueueArn": {"Fn::GetAtt": [synth.logical_id(synth.stack.queues[n.queue.name]), "Arn"]},
        }
        for n in d.BUCKET_NOTIFICATIONS
        for _ in n.events
    ]
    assert config["Properties"]["NotificationConfiguration"] == {"QueueConfigurations": expected}
    assert [n.prefix for n in d.BUCKET_NOTIFICATIONS if n.queue is d.PHOTO_QUEUE] == ["photos/", "parcels/"]
    # S3 may send to the queue for this bucket only, and the configuration is put after that policy exists
    queue = synth.logical_id(synth.stack.queues[d.PHOTO_QUEUE.name])
    ((policy_id, policy),) = [
        (k, p)
        for k, p in synth.of_type("AWS::SQS::QueuePolicy").items()
        if p["Properties"]["Queues"] == [{"Ref": queue}]
    ]
    (allow,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert "sqs:SendMessage" in _as_list(allow["Action"])
    assert allow["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert allow["Condition"] == {"ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [bucket, "Arn"]}}}
    assert policy_id in config["DependsOn"]


def test_the_photo_processor_consumes_the_photo_queue_reporting_partial_failures(synth: Synth) -> None:
    assert d.PHOTO_QUEUE.consumer == "photo_processor"
    queue = synth.logical_id(synth.stack.queues[d.PHOTO_QUEUE.name])
    function = synth.logical_id(synth.stack.functions["photo_processor"])
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
            "FunctionName": {"Ref": function},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_the_notifications_handler_may_only_configure_the_bucket_and_write_its_own_logs(synth: Synth) -> None:
    """CDK's inline Lambda behind Custom::S3BucketNotifications, without the managed policy CDK would attach."""
    (handler_id,) = [k for k in synth.of_type("AWS::Lambda::Function") if k.startswith(NOTIFICATIONS_HANDLER_ID)]
    props = synth.resources[handler_id]["Properties"]
    role = props["Role"]["Fn::GetAtt"][0]
    assert role == synth.logical_id(synth.stack.notifications_handler_role)
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert synth.resources[log_group]["Properties"]["RetentionInDays"] == 30
    assert _permissions(synth, role) == {
        "s3:PutBucketNotification": {f"<{synth.logical_id(synth.stack.bucket)}>"},
        "logs:CreateLogStream": {f"<{log_group}>"},
        "logs:PutLogEvents": {f"<{log_group}>"},
    }


def test_event_bus_is_named_as_defined_and_archived(synth: Synth) -> None:
    synth.template.has_resource_properties("AWS::Events::EventBus", {"Name": d.EVENT_BUS_NAME})
    synth.template.has_resource_properties(
        "AWS::Events::Archive", {"EventPattern": {"source": [d.EVENT_SOURCE]}, "RetentionDays": Match.any_value()}
    )


def test_customer_milestones_are_routed_from_the_bus_to_the_notification_queue(synth: Synth) -> None:
    rules = {k: r for k, r in synth.of_type("AWS::Events::Rule").items() if "EventPattern" in r["Properties"]}
    assert len(rules) == len(d.EVENT_RULES)
    for r in d.EVENT_RULES:
        logical = synth.logical_id(synth.stack.event_rules[r.name])
        props = rules[logical]["Properties"]
        queue = synth.logical_id(synth.stack.queues[r.queue.name])
        assert props["Name"] == r.name
        assert props["EventBusName"] == {"Ref": synth.logical_id(synth.stack.event_bus)}
        assert props["EventPattern"] == {"source": [d.EVENT_SOURCE], "detail-type": list(r.detail_types)}
        assert props["State"] == "ENABLED"
        assert [t["Arn"] for t in props["Targets"]] == [{"Fn::GetAtt": [queue, "Arn"]}]
        # EventBridge may send to the queue for this rule only; nobody else is allowed anything
        (policy,) = [
            p for p in synth.of_type("AWS::SQS::QueuePolicy").values() if p["Properties"]["Queues"] == [{"Ref": queue}]
        ]
        (allow,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert "sqs:SendMessage" in _as_list(allow["Action"])
        assert allow["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [logical, "Arn"]}}}
    assert d.CUSTOMER_NOTIFICATIONS.queue is d.NOTIFICATION_QUEUE
    assert d.NOTIFICATION_QUEUE.consumer == "notifier"
    assert "return.label_created" in d.CUSTOMER_NOTIFICATIONS.detail_types
    assert "return.delivered" not in d.CUSTOMER_NOTIFICATIONS.detail_types  # no email for every carrier scan


def test_scheduled_functions_are_invoked_on_their_schedule_by_their_rule_only(synth: Synth) -> None:
    scheduled = [fn for fn in d.FUNCTIONS if fn.schedule]
    assert [(fn.name, fn.schedule) for fn in scheduled] == [
        ("expire_labels", "rate(1 hour)"),
        ("dhl_tracking_poller", "rate(30 minutes)"),
        ("sweeper", "rate(5 minutes)"),
    ]
    schedules = {k: r for k, r in synth.of_type("AWS::Events::Rule").items() if "ScheduleExpression" in r["Properties"]}
    assert len(schedules) == len(scheduled)
    permissions = list(synth.of_type("AWS::Lambda::Permission").values())
    for fn in scheduled:
        function = synth.logical_id(synth.stack.functions[fn.name])
        ((rule_id, rule),) = [
            (k, r)
            for k, r in schedules.items()
            if [t["Arn"] for t in r["Properties"]["Targets"]] == [{"Fn::GetAtt": [function, "Arn"]}]
        ]
        assert rule["Properties"]["ScheduleExpression"] == fn.schedule
        assert rule["Properties"]["State"] == "ENABLED"
        assert "EventBusName" not in rule["Properties"]  # schedules live on the default bus
        (permission,) = [
            p["Properties"] for p in permissions if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
        ]
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["Principal"] == "events.amazonaws.com"
        assert permission["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


# -- compute -------------------------------------------------------------------------------------------------------


def test_every_defined_function_exists_with_its_handler_and_limits(synth: Synth) -> None:
    assert set(synth.stack.functions) == {fn.name for fn in d.FUNCTIONS}
    for fn in d.FUNCTIONS:
        props = synth.resources[synth.logical_id(synth.stack.functions[fn.name])]["Properties"]
        assert props["Handler"] == f"functions.{fn.name}.handler.handler"
        assert (d.ROOT / "functions" / fn.name / "handler.py").is_file()
        assert props["Runtime"] == "python3.11"
        assert props["Timeout"] == fn.timeout_seconds
        assert props["MemorySize"] == fn.memory_mb
        assert len(props["Layers"]) == 1


def test_every_lambda_gets_every_required_setting_and_secrets_only_as_references(synth: Synth) -> None:
    required = {name.upper() for name, field in Settings.model_fields.items() if field.is_required()}
    lambdas = {**synth.of_type("AWS::Lambda::Function"), **synth.of_type("AWS::Serverless::Function")}
    # CDK's own handler for the bucket notifications runs none of our code (and gets none of our settings)
    lambdas = {k: v for k, v in lambdas.items() if not k.startswith(NOTIFICATIONS_HANDLER_ID)}
    assert len(lambdas) == len(d.FUNCTIONS) + 1  # + the API
    for logical, fn in lambdas.items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert required <= set(env), f"{logical} misses settings {required - set(env)}"
        assert env["SENDER_EMAIL"] == SENDER
        assert env["SECRETS_PREFIX"] == SECRETS_PREFIX
        # deployed at the level the suite runs at (tests/conftest.py), so no log line is first written in AWS
        assert env["POWERTOOLS_LOG_LEVEL"] == d.LOG_LEVEL == os.environ["POWERTOOLS_LOG_LEVEL"]
        if logical != "APIHandler":
            # least privilege: the workflow functions authenticate nobody, so they get no API secrets
            assert not {"OPERATOR_KEY_SHA256", "PORTAL_TOKEN_SECRET", "EASYPOST_WEBHOOK_SECRET"} & set(env), logical
    api_env = synth.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api_env["OPERATOR_KEY_SHA256"] == OPERATOR_KEY_SHA256
    assert re.fullmatch(
        r"\{\{resolve:secretsmanager:<Ref:PortalTokenSecret\w+>:SecretString:::\}\}",
        _render(api_env["PORTAL_TOKEN_SECRET"]),
    )
    assert _render(api_env["EASYPOST_WEBHOOK_SECRET"]).startswith("{{resolve:secretsmanager:<Ref:EasypostWebhookSecret")


def test_carrier_network_webhook_secrets_reach_the_api_only_and_only_as_references(synth: Synth) -> None:
    secrets = {
        "SHIPPO_WEBHOOK_SECRET": "Shippo",
        "AFTERSHIP_WEBHOOK_SECRET": "Aftership",
        "SENDCLOUD_WEBHOOK_SECRET": "Sendcloud",
    }
    # every one is a setting the app reads
    assert {name.lower() for name in secrets} <= set(Settings.model_fields)
    lambdas = {**synth.of_type("AWS::Lambda::Function"), **synth.of_type("AWS::Serverless::Function")}
    for logical, fn in lambdas.items():
        if logical != "APIHandler":
            assert not set(secrets) & set(fn["Properties"].get("Environment", {}).get("Variables", {})), logical
    api_env = synth.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    generated = synth.of_type("AWS::SecretsManager::Secret")
    for name, logical in secrets.items():
        assert re.fullmatch(
            rf"\{{\{{resolve:secretsmanager:<Ref:{logical}WebhookSecret\w+>:SecretString:::\}}\}}",
            _render(api_env[name]),
        ), name
        (secret_id,) = [k for k in generated if k.startswith(f"{logical}WebhookSecret")]
        assert generated[secret_id]["Properties"]["GenerateSecretString"]  # no value in the template
        assert f"{logical}WebhookSecretArn" in synth.json["Outputs"]


def test_state_machines_are_the_asl_files_with_every_placeholder_substituted(synth: Synth) -> None:
    for sm in d.STATE_MACHINES:
        machine = synth.resources[synth.logical_id(synth.stack.state_machines[sm.name])]
        rendered = _render(machine["Properties"]["DefinitionString"])
        assert "${" not in rendered
        expected = sm.definition({fn.name: f"<{synth.logical_id(f)}>" for fn, f in _functions(synth)})
        assert json.loads(rendered) == json.loads(expected)
        assert machine["Properties"]["StateMachineName"] == sm.name
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
        assert machine["Properties"]["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_state_machine_roles_invoke_exactly_their_functions(synth: Synth) -> None:
    for sm in d.STATE_MACHINES:
        machine = synth.resources[synth.logical_id(synth.stack.state_machines[sm.name])]
        role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        invoked = [
            r
            for s in synth.statements_of_role(role)
            if "lambda:InvokeFunction" in _as_list(s["Action"])
            for r in _as_list(s["Resource"])
        ]
        expected = {synth.logical_id(synth.stack.functions[name]) for name in sm.functions.values()}
        assert sorted(invoked, key=str) == sorted(({"Fn::GetAtt": [e, "Arn"]} for e in expected), key=str)


# -- permissions ---------------------------------------------------------------------------------------------------


def _all_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for logical, res in synth.resources.items():
        props = res.get("Properties", {})
        if res["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            found += [(logical, s) for s in props["PolicyDocument"]["Statement"]]
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(logical, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def test_no_wildcard_actions_and_star_resources_only_where_aws_requires_them(synth: Synth) -> None:
    statements = _all_statements(synth)
    assert statements
    for logical, s in statements:
        actions = _as_list(s["Action"])
        assert all(a != "*" and not a.endswith(":*") for a in actions), (logical, actions)
        if "*" in _as_list(s.get("Resource", [])):
            assert set(actions) <= STAR_RESOURCE_ACTIONS, (logical, actions)
    for logical, role in synth.of_type("AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{logical} uses a managed policy"


def _permissions(synth: Synth, role_logical_id: str) -> dict[str, set[str]]:
    """action -> the resources it is allowed on, rendered as text."""
    allowed: dict[str, set[str]] = {}
    for s in synth.statements_of_role(role_logical_id):
        assert s["Effect"] == "Allow"
        for action in _as_list(s["Action"]):
            allowed.setdefault(action, set()).update(_render(r) for r in _as_list(s["Resource"]))
    return allowed


PARAMETERS_ARN = f"arn:<Ref:AWS::Partition>:ssm:<Ref:AWS::Region>:<Ref:AWS::AccountId>:parameter{SECRETS_PREFIX}"
STATES_ARN = "arn:<Ref:AWS::Partition>:states:<Ref:AWS::Region>:<Ref:AWS::AccountId>:stateMachine"
SES_IDENTITIES = "arn:<Ref:AWS::Partition>:ses:<Ref:AWS::Region>:<Ref:AWS::AccountId>:identity/*"


def _granted(synth: Synth, needs: tuple[str, ...]) -> dict[str, set[str]]:
    """action -> resources, rendered, as definitions.CAPABILITIES says `needs` should be granted."""
    table = f"<{synth.logical_id(synth.stack.table)}>"
    bucket = f"<{synth.logical_id(synth.stack.bucket)}>"
    expected: dict[str, set[str]] = {}
    for need in needs:
        for g in d.CAPABILITIES[need]:
            if g.resource == d.On.TABLE:
                resources = {table, f"{table}/index/*"} if set(g.actions) <= set(d.TABLE_READ) else {table}
            elif g.resource == d.On.BUCKET:
                resources = {bucket if s == "" else f"{bucket}/{s}" for s in g.scopes}
            elif g.resource == d.On.PARAMETERS:
                resources = {f"{PARAMETERS_ARN}/{s}" for s in g.scopes}
            elif g.resource == d.On.QUEUE:
                resources = {f"<{synth.logical_id(synth.stack.queues[s])}>" for s in g.scopes}
            elif g.resource == d.On.EVENT_BUS:
                resources = {f"<{synth.logical_id(synth.stack.event_bus)}>"}
            elif g.resource == d.On.STATE_MACHINE:
                resources = {f"{STATES_ARN}:{s}" for s in g.scopes}
            else:
                assert g.resource == d.On.MAIL
                resources = {SES_IDENTITIES}
            for action in g.actions:
                expected.setdefault(action, set()).update(resources)
    return expected


def _own_permissions(synth: Synth, role: str, needs: tuple[str, ...] = ()) -> dict[str, set[str]]:
    """The role's permissions without what every function gets (its log group, X-Ray) and without what an event
    source grants (reading its queue or stream: the mapping's, asserted with each consumer) unless `needs` grant it."""
    allowed = _permissions(synth, role)
    granted = _granted(synth, needs)
    sources = {f"<{synth.logical_id(q)}>" for q in [*synth.stack.queues.values(), synth.stack.outbox_dlq]}
    sources.add(f"<{synth.logical_id(synth.stack.table)}>")  # the stream (GetAtt Table.StreamArn, rendered)
    event_source_actions = {
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:DeleteMessage",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",  # the outbox's DLQ (on failure)
        "dynamodb:ListStreams",
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    own: dict[str, set[str]] = {}
    for action, resources in allowed.items():
        if action.startswith(("logs:", "xray:")):
            continue
        mine = resources
        if action in event_source_actions:
            assert resources <= sources | {"*"} | granted.get(action, set()), (action, resources)
            mine = resources & granted.get(action, set())
        if mine:
            own[action] = mine
    return own


def _role_of(synth: Synth, function: str) -> str:
    props = synth.resources[synth.logical_id(synth.stack.functions[function])]["Properties"]
    return str(props["Role"]["Fn::GetAtt"][0])


def test_api_role_has_exactly_the_permissions_the_api_needs(synth: Synth) -> None:
    role = synth.logical_id(synth.stack.api_role)
    assert synth.resources["APIHandler"]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    table = f"<{synth.logical_id(synth.stack.table)}>"
    bucket = f"<{synth.logical_id(synth.stack.bucket)}>"
    queue = f"<{synth.logical_id(synth.stack.queues[d.TRACKING_QUEUE.name])}>"
    machines = {sm.name: f"{STATES_ARN}:{sm.name}" for sm in d.STATE_MACHINES}
    merchants = f"{PARAMETERS_ARN}/merchants/*"
    carriers = f"{PARAMETERS_ARN}/carriers/*"
    log_group = f"<{synth.logical_id(synth.stack.api_log_group)}>"
    expected = {
        "logs:CreateLogStream": {log_group},
        "logs:PutLogEvents": {log_group},
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
        **{a: {table, f"{table}/index/*"} for a in d.TABLE_READ},
        **{a: {table} for a in (*d.TABLE_WRITE, *d.TABLE_DELETE)},
        # labels made, uploads signed (photos, parcel photos, customer photos); never exports or thumbnails
        "s3:PutObject": {f"{bucket}/{p}*" for p in ("labels/", "photos/", "parcels/", "customer/")},
        "s3:DeleteObject": {f"{bucket}/labels/*"},  # the label of a return that could not be saved
        "s3:GetObject": {
            f"{bucket}/{p}*" for p in ("labels/", "photos/", "parcels/", "thumbs/", "customer/", "exports/")
        },
        "s3:ListBucket": {bucket},  # HEAD of a missing upload: 404, not 403
        "sqs:SendMessage": {
            queue,
            f"<{synth.logical_id(synth.stack.queues[d.EXPORT_QUEUE.name])}>",
            f"<{synth.logical_id(synth.stack.queues[d.WEBHOOK_QUEUE.name])}>",  # redeliveries asked by hand
        },
        "states:StartExecution": set(machines.values()),
        "states:SendTaskSuccess": {machines[d.PROCESSING.name]},
        "ssm:GetParameter": {merchants, carriers},
        "ssm:PutParameter": {merchants, carriers},  # the operator sets carrier credentials through the API
        "ssm:DeleteParameter": {f"{merchants}/subscription-*"},  # a deleted subscription's signing secret only
        "ses:SendRawEmail": {SES_IDENTITIES},
    }
    assert _permissions(synth, role) == expected
    assert _own_permissions(synth, role, d.API_NEEDS) == _granted(synth, d.API_NEEDS)
    assert "dynamodb:Scan" not in expected


def test_the_notifier_consumes_its_queue_reads_labels_and_sends_mail_and_nothing_else(synth: Synth) -> None:
    (fn,) = [f for f in d.FUNCTIONS if f.name == "notifier"]
    assert set(fn.needs) == {"table_read", "table_write", "table_delete", "customer_documents", "mail"}
    props = synth.resources[synth.logical_id(synth.stack.functions["notifier"])]["Properties"]
    allowed = _permissions(synth, props["Role"]["Fn::GetAtt"][0])
    assert allowed["s3:GetObject"] == {f"<{synth.logical_id(synth.stack.bucket)}>/labels/*"}
    queue = f"<{synth.logical_id(synth.stack.queues[d.NOTIFICATION_QUEUE.name])}>"
    sqs_actions = {a for a in allowed if a.startswith("sqs:")}
    assert "sqs:ReceiveMessage" in sqs_actions and "sqs:SendMessage" not in sqs_actions  # the event source mapping's
    assert all(allowed[a] == {queue} for a in sqs_actions)
    assert {a for a in allowed if not a.startswith(("dynamodb:", "logs:", "xray:", "sqs:"))} == {
        "s3:GetObject",
        "ses:SendRawEmail",
    }


def test_the_report_aggregator_consumes_the_reports_queue_with_table_access_only(synth: Synth) -> None:
    # Given the reports rule and queue as defined
    assert d.REPORT_EVENTS in d.EVENT_RULES and d.REPORT_EVENTS.queue is d.REPORTS_QUEUE
    assert d.REPORTS_QUEUE in d.QUEUES and d.REPORTS_QUEUE.consumer == "report_aggregator"
    # Then the queue has its DLQ with an alarm, and the function reads it reporting partial failures
    queue_id = synth.logical_id(synth.stack.queues[d.REPORTS_QUEUE.name])
    queue = synth.resources[queue_id]["Properties"]
    assert queue["QueueName"] == d.REPORTS_QUEUE.name
    assert queue["RedrivePolicy"]["maxReceiveCount"] == d.REPORTS_QUEUE.max_receive_count
    dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert synth.resources[dlq_id]["Properties"]["QueueName"] == d.REPORTS_QUEUE.dlq_name
    alarms = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}
        in a["Properties"].get("Dimensions", [])
    ]
    assert len(alarms) == 1
    fn_id = synth.logical_id(synth.stack.functions["report_aggregator"])
    mappings = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    assert [m["EventSourceArn"] for m in mappings] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # and its role: the table (and the queue it consumes), nothing else
    allowed = _permissions(synth, synth.resources[fn_id]["Properties"]["Role"]["Fn::GetAtt"][0])
    assert {a for a in allowed if not a.startswith(("dynamodb:", "logs:", "xray:", "sqs:"))} == set()
    assert all(allowed[a] == {f"<{queue_id}>"} for a in allowed if a.startswith("sqs:"))
    assert "sqs:SendMessage" not in allowed


def test_the_table_streams_new_images_to_the_event_publisher_filtered_to_new_outbox_records(synth: Synth) -> None:
    """The transactional outbox (docs/adr/0005): only the stream delivers domain events to the bus."""
    o = d.OUTBOX
    (table,) = synth.of_type("AWS::DynamoDB::Table").values()
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    table_id = synth.logical_id(synth.stack.table)
    (mapping,) = [
        m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    ]
    assert mapping["FunctionName"] == {"Ref": synth.logical_id(synth.stack.functions[o.consumer])}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["BatchSize"] == o.batch_size
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == o.retry_attempts
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    dlq = synth.logical_id(synth.stack.outbox_dlq)
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq, "Arn"]}}}
    (pattern,) = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert pattern == o.filter_pattern()
    assert pattern == {
        "eventName": ["INSERT"],
        "dynamodb": {
            "Keys": {"sk": {"S": [{"prefix": "TL#"}]}},
            "NewImage": {"detail_type": {"S": [{"exists": True}]}},
        },
    }
    # the DLQ is encrypted and watched like the others
    assert synth.resources[dlq]["Properties"]["QueueName"] == o.dlq_name
    assert synth.resources[dlq]["Properties"]["SqsManagedSseEnabled"] is True
    alarms = [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()]
    assert any(
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}} in a["Dimensions"]
        and a["ComparisonOperator"] == "GreaterThanThreshold"
        and a["Threshold"] == 0
        for a in alarms
    )


def test_the_event_publisher_reads_the_stream_and_puts_events_on_the_bus_and_nothing_else(synth: Synth) -> None:
    (fn,) = [f for f in d.FUNCTIONS if f.name == d.OUTBOX.consumer]
    assert fn.needs == ("events",)
    props = synth.resources[synth.logical_id(synth.stack.functions[fn.name])]["Properties"]
    role = props["Role"]["Fn::GetAtt"][0]
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    table = synth.logical_id(synth.stack.table)
    stream = f"<{table}>"  # GetAtt Table.StreamArn, rendered
    dlq = f"<{synth.logical_id(synth.stack.outbox_dlq)}>"
    assert _permissions(synth, role) == {
        "logs:CreateLogStream": {f"<{log_group}>"},
        "logs:PutLogEvents": {f"<{log_group}>"},
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
        "events:PutEvents": {f"<{synth.logical_id(synth.stack.event_bus)}>"},
        "dynamodb:ListStreams": {"*"},
        "dynamodb:DescribeStream": {stream},
        "dynamodb:GetRecords": {stream},
        "dynamodb:GetShardIterator": {stream},
        "sqs:SendMessage": {dlq},
        "sqs:GetQueueAttributes": {dlq},
        "sqs:GetQueueUrl": {dlq},
    }
    stream_statements = [s for s in synth.statements_of_role(role) if "dynamodb:GetRecords" in _as_list(s["Action"])]
    assert [s["Resource"] for s in stream_statements] == [{"Fn::GetAtt": [table, "StreamArn"]}]


def test_only_the_event_publisher_puts_events_on_the_bus(synth: Synth) -> None:
    putting = {
        logical
        for logical, s in _all_statements(synth)
        if "events:PutEvents" in _as_list(s["Action"]) or "events:*" in _as_list(s["Action"])
    }
    publisher_role = synth.resources[synth.logical_id(synth.stack.functions[d.OUTBOX.consumer])]["Properties"]["Role"]
    (policy,) = putting
    assert {"Ref": publisher_role["Fn::GetAtt"][0]} in synth.resources[policy]["Properties"]["Roles"]
    assert [f.name for f in d.FUNCTIONS if "events" in f.needs] == [d.OUTBOX.consumer]


def test_every_function_role_is_exactly_its_needs(synth: Synth) -> None:
    """definitions.FUNCTIONS[].needs -> the role: nothing more (tests/support/iam_audit.py: nothing less)."""
    for fn in d.FUNCTIONS:
        role = _role_of(synth, fn.name)
        assert _own_permissions(synth, role, fn.needs) == _granted(synth, fn.needs), fn.name
        statements = synth.statements_of_role(role)
        for s in statements:
            assert not any(a in {"dynamodb:*", "s3:*", "ssm:*", "sqs:*"} for a in _as_list(s["Action"])), fn.name
            if "ses:SendRawEmail" in _as_list(s["Action"]):
                assert s["Condition"] == {"StringEquals": {"ses:FromAddress": SENDER}}
        assert "ssm:PutParameter" not in _permissions(synth, role), fn.name


def test_functions_that_never_delete_may_not_delete(synth: Synth) -> None:
    never_delete = {"photo_processor", "report_aggregator", "webhook_dispatcher", "export_worker", "event_publisher"}
    for fn in d.FUNCTIONS:
        allowed = _permissions(synth, _role_of(synth, fn.name))
        assert ("dynamodb:DeleteItem" in allowed) == (fn.name not in never_delete), fn.name
        assert "dynamodb:BatchWriteItem" not in allowed, fn.name
    # and the export worker writes nothing but its EXPORT# records
    assert _permissions(synth, _role_of(synth, "export_worker")).keys().isdisjoint({"dynamodb:DeleteItem"})


def test_the_photo_processor_reads_and_deletes_uploads_and_writes_thumbnails_only(synth: Synth) -> None:
    bucket = f"<{synth.logical_id(synth.stack.bucket)}>"
    table = f"<{synth.logical_id(synth.stack.table)}>"
    allowed = _own_permissions(synth, _role_of(synth, "photo_processor"), ("photo_uploads",))
    assert allowed == {
        "dynamodb:GetItem": {table, f"{table}/index/*"},
        "dynamodb:BatchGetItem": {table, f"{table}/index/*"},
        "dynamodb:Query": {table, f"{table}/index/*"},
        "dynamodb:PutItem": {table},
        "dynamodb:UpdateItem": {table},
        "dynamodb:ConditionCheckItem": {table},
        "s3:GetObject": {f"{bucket}/photos/*", f"{bucket}/parcels/*"},
        "s3:DeleteObject": {f"{bucket}/photos/*", f"{bucket}/parcels/*"},
        "s3:PutObject": {f"{bucket}/thumbs/*"},
        "s3:ListBucket": {bucket},
    }
    assert {n.prefix for n in d.BUCKET_NOTIFICATIONS} == {"photos/", "parcels/"}  # what it is told about


def test_expire_labels_and_the_dhl_poller_read_carrier_credentials(synth: Synth) -> None:
    """expire_labels voids EasyPost and Sendcloud labels with the carrier's API key (was AccessDenied in AWS)."""
    carriers = f"{PARAMETERS_ARN}/carriers/*"
    readers = {fn.name for fn in d.FUNCTIONS if "carrier_credentials" in fn.needs}
    assert readers == {"expire_labels", "dhl_tracking_poller"}
    for name in readers:
        assert _permissions(synth, _role_of(synth, name))["ssm:GetParameter"] == {carriers}, name


def test_merchant_secrets_are_read_by_their_users_only(synth: Synth) -> None:
    """Shop credentials by the refund functions (and the sweeper, which fails refunds), the refund webhook secret by
    those and the restock sync,
    subscription secrets by the dispatcher: no function reads <prefix>/merchants/* as a whole."""
    readers: dict[str, set[str]] = {}
    for fn in d.FUNCTIONS:
        for resource in _permissions(synth, _role_of(synth, fn.name)).get("ssm:GetParameter", set()):
            readers.setdefault(resource.removeprefix(PARAMETERS_ARN), set()).add(fn.name)
    refunds = {"send_refund", "refund_failed", "reconcile_refund", "sweeper"}
    assert readers == {
        "/carriers/*": {"expire_labels", "dhl_tracking_poller"},
        "/merchants/*/shop-*": refunds,
        "/merchants/*/refund-webhook-secret": refunds | {"apply_dispositions"},
        "/merchants/*/subscription-*": {"webhook_dispatcher"},
    }


def test_capability_data_is_consistent() -> None:
    for fn in d.FUNCTIONS:
        assert fn.needs and set(fn.needs) <= set(d.CAPABILITIES), fn.name
        assert len(set(fn.needs)) == len(fn.needs), fn.name
    assert set(d.API_NEEDS) <= set(d.CAPABILITIES)
    used = {n for fn in d.FUNCTIONS for n in fn.needs} | set(d.API_NEEDS)
    assert used == set(d.CAPABILITIES), "a capability nobody needs"
    for grants in d.CAPABILITIES.values():
        for g in grants:
            assert all(a.split(":", 1)[1] != "*" for a in g.actions)


# -- packages and lint ---------------------------------------------------------------------------------------------


def _wheel_tags(names: list[str], read: Any) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for name in names:
        if re.fullmatch(r"[^/]+\.dist-info/WHEEL", name):
            tags[name.split("/")[0]] = [line[5:] for line in read(name).splitlines() if line.startswith("Tag: ")]
    return tags


def _loads_on_lambda(tag: str) -> bool:
    platform = tag.rsplit("-", 1)[-1]
    if platform == "any":
        return True
    ok = False
    for p in platform.split("."):
        m = re.fullmatch(r"manylinux_2_(\d+)_x86_64", p)
        ok |= p in {"manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"} or bool(
            m and int(m.group(1)) <= LAMBDA_GLIBC_MINOR
        )
    return ok


def test_packaged_wheels_load_on_the_lambda_runtime(synth: Synth) -> None:
    """A wheel built on this machine (tag linux_x86_64) links this machine's libraries: it breaks on Lambda."""
    code_uri = synth.resources["APIHandler"]["Properties"]["CodeUri"]
    with zipfile.ZipFile(synth.outdir / f"asset.{code_uri['Key']}") as zf:
        api = _wheel_tags(zf.namelist(), lambda n: zf.read(n).decode())
    (layer_version,) = synth.of_type("AWS::Lambda::LayerVersion").values()  # the one layer every function shares
    with zipfile.ZipFile(synth.outdir / f"asset.{layer_version['Properties']['Content']['S3Key']}") as zf:
        assert all(n.startswith("python/") for n in zf.namelist())
        layer = _wheel_tags(
            [n.removeprefix("python/") for n in zf.namelist()], lambda n: zf.read(f"python/{n}").decode()
        )
    for where, tags in (("API package", api), ("functions layer", layer)):
        assert tags, where
        bad = {dist: t for dist, t in tags.items() if not any(_loads_on_lambda(tag) for tag in t)}
        assert not bad, f"{where}: wheels that will not load on python3.11 Lambda (Amazon Linux 2): {bad}"


def test_cfn_lint_finds_nothing(synth: Synth, tmp_path: Path) -> None:
    path = tmp_path / "Boomerang.template.json"
    path.write_text(json.dumps(synth.json))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), "--format", "json", "--ignore-checks", *sorted(CFN_LINT_IGNORED), "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=1)
    assert result.returncode == 0, result.stderr


def test_missing_context_is_refused_before_anything_is_built() -> None:
    for missing in ("operatorKeySha256", "senderEmail"):
        context = {k: v for k, v in CONTEXT.items() if k != missing}
        with pytest.raises(ConfigurationError, match=missing):
            BoomerangStack(cdk.App(context=context), "Boomerang")
    with pytest.raises(ConfigurationError, match="operatorKeySha256"):
        BoomerangStack(cdk.App(context={**CONTEXT, "operatorKeySha256": "not-a-hash"}), "Boomerang")


# -- helpers -------------------------------------------------------------------------------------------------------


def _functions(synth: Synth) -> list[tuple[d.Function, Any]]:
    return [(fn, synth.stack.functions[fn.name]) for fn in d.FUNCTIONS]


def test_synth_leaves_the_process_environment_as_it_was(synth: Synth) -> None:
    # chalice copies the stage's environment into os.environ while packaging; that must not leak into the
    # process (other tests in the same worker read settings from it)
    assert "OPERATOR_KEY_SHA256" not in os.environ
    assert os.environ.get("BOOMERANG_OPERATOR_KEY") == "op_test_0123456789abcdef"


def test_the_export_worker_reads_returns_writes_its_records_and_files_and_nothing_else(synth: Synth) -> None:
    (fn,) = [f for f in d.FUNCTIONS if f.name == "export_worker"]
    assert d.EXPORT_QUEUE.consumer == "export_worker" and d.EXPORT_QUEUE.batch_size == 1
    assert set(fn.needs) == {"table_read", "export_records", "export_files"}
    props = synth.resources[synth.logical_id(synth.stack.functions["export_worker"])]["Properties"]
    role = props["Role"]["Fn::GetAtt"][0]
    allowed = _permissions(synth, role)
    table = f"<{synth.logical_id(synth.stack.table)}>"
    bucket = f"<{synth.logical_id(synth.stack.bucket)}>"
    queue = f"<{synth.logical_id(synth.stack.queues[d.EXPORT_QUEUE.name])}>"
    assert {a: r for a, r in allowed.items() if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem": {table, f"{table}/index/*"},
        "dynamodb:BatchGetItem": {table, f"{table}/index/*"},
        "dynamodb:Query": {table, f"{table}/index/*"},
        "dynamodb:PutItem": {table},
        "dynamodb:UpdateItem": {table},
    }
    (writes,) = [s for s in synth.statements_of_role(role) if "dynamodb:PutItem" in _as_list(s["Action"])]
    assert writes["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["EXPORT#*"]}}
    assert {a: r for a, r in allowed.items() if a.startswith("s3:")} == {
        "s3:PutObject": {f"{bucket}/exports/*"},
        "s3:AbortMultipartUpload": {f"{bucket}/exports/*"},
    }
    sqs_actions = {a for a in allowed if a.startswith("sqs:")}
    assert "sqs:ReceiveMessage" in sqs_actions and "sqs:SendMessage" not in sqs_actions
    assert all(allowed[a] == {queue} for a in sqs_actions)
    assert {a for a in allowed if not a.startswith(("dynamodb:", "logs:", "xray:", "sqs:", "s3:"))} == set()
    assert d.EXPORT_QUEUE.visibility_timeout_seconds > fn.timeout_seconds
    rules = synth.resources[synth.logical_id(synth.stack.bucket)]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("Prefix") == d.EXPORT_PREFIX and r.get("ExpirationInDays") for r in rules)


def test_the_webhook_dispatcher_consumes_and_retries_on_its_queue_and_reads_subscription_secrets_only(
    synth: Synth,
) -> None:
    (fn,) = [f for f in d.FUNCTIONS if f.name == "webhook_dispatcher"]
    assert set(fn.needs) == {"table_read", "table_write", "subscription_secrets", "webhook_retries"}
    assert d.WEBHOOK_QUEUE.consumer == fn.name and d.MERCHANT_WEBHOOKS.queue is d.WEBHOOK_QUEUE
    assert d.WEBHOOK_QUEUE.visibility_timeout_seconds > fn.timeout_seconds
    props = synth.resources[synth.logical_id(synth.stack.functions[fn.name])]["Properties"]
    allowed = _permissions(synth, props["Role"]["Fn::GetAtt"][0])
    queue = f"<{synth.logical_id(synth.stack.queues[d.WEBHOOK_QUEUE.name])}>"
    sqs_actions = {a for a in allowed if a.startswith("sqs:")}
    assert {"sqs:ReceiveMessage", "sqs:SendMessage", "sqs:GetQueueUrl"} <= sqs_actions
    assert all(allowed[a] == {queue} for a in sqs_actions)
    parameters = f"arn:<Ref:AWS::Partition>:ssm:<Ref:AWS::Region>:<Ref:AWS::AccountId>:parameter{SECRETS_PREFIX}"
    assert allowed["ssm:GetParameter"] == {f"{parameters}/merchants/*/subscription-*"}
    assert {a for a in allowed if not a.startswith(("dynamodb:", "logs:", "xray:", "sqs:"))} == {"ssm:GetParameter"}
    rule = synth.resources[synth.logical_id(synth.stack.event_rules[d.MERCHANT_WEBHOOKS.name])]["Properties"]
    assert rule["EventPattern"]["detail-type"] == list(d.MERCHANT_WEBHOOKS.detail_types)


def _machine_arn(machine: d.StateMachine) -> str:
    """A state machine's ARN as the functions' policies name it (from its physical name: stack module docstring)."""
    return f"arn:<Ref:AWS::Partition>:states:<Ref:AWS::Region>:<Ref:AWS::AccountId>:stateMachine:{machine.name}"


def test_the_sweeper_runs_every_five_minutes_and_may_redrive_what_it_sweeps_and_nothing_else(synth: Synth) -> None:
    (fn,) = [f for f in d.FUNCTIONS if f.name == "sweeper"]
    assert fn.schedule == "rate(5 minutes)"
    props = synth.resources[synth.logical_id(synth.stack.functions[fn.name])]["Properties"]
    allowed = _permissions(synth, props["Role"]["Fn::GetAtt"][0])
    table = f"<{synth.logical_id(synth.stack.table)}>"
    webhooks = f"<{synth.logical_id(synth.stack.queues[d.WEBHOOK_QUEUE.name])}>"
    exports = f"<{synth.logical_id(synth.stack.queues[d.EXPORT_QUEUE.name])}>"
    parameters = f"arn:<Ref:AWS::Partition>:ssm:<Ref:AWS::Region>:<Ref:AWS::AccountId>:parameter{SECRETS_PREFIX}"
    # the due index is Queried (never a Scan), records read and written (a refund given up: the return's transaction)
    assert "dynamodb:Query" in allowed and f"{table}/index/*" in allowed["dynamodb:Query"]
    assert "dynamodb:Scan" not in allowed
    # webhook retries and exports queued again, on those two queues only
    assert allowed["sqs:SendMessage"] == {webhooks, exports}
    assert {a for a in allowed if a.startswith("sqs:")} <= {"sqs:SendMessage", "sqs:GetQueueUrl"}
    # refund workflows started, the refund machine only; no task tokens, no other machine
    assert allowed["states:StartExecution"] == {_machine_arn(d.REFUND)}
    assert {a for a in allowed if a.startswith("states:")} == {"states:StartExecution"}
    # a refund to a shop is checked with the shop before it is failed (merchant secrets), acknowledgements are mailed
    assert allowed["ssm:GetParameter"] == {
        f"{parameters}/merchants/*/shop-*",
        f"{parameters}/merchants/*/refund-webhook-secret",
    }
    assert "ses:SendRawEmail" in allowed
    # erasures and the retention sweep delete what shows a customer: labels, their photos, parcel photos, thumbnails;
    # nothing is read or written in the bucket
    bucket = f"<{synth.logical_id(synth.stack.bucket)}>"
    assert allowed["s3:DeleteObject"] == {f"{bucket}/{p}*" for p in ("labels/", "customer/", "photos/", "thumbs/")}
    assert {a for a in allowed if a.startswith("s3:")} == {"s3:DeleteObject"}
    assert {
        a
        for a in allowed
        if not a.startswith(("dynamodb:", "logs:", "xray:", "sqs:", "states:", "ssm:", "ses:", "s3:DeleteObject"))
    } == set()
