"""The stack with a private database (VPC), an existing OpenAI secret and an alarm e-mail, from context."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infrastructure.conftest import Synthesized, cfn_lint, synthesize

SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
SECURITY_GROUP = "sg-0123456789abcdef0"
OPENAI_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:invoice-pipeline/openai"
DATABASE_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds/orders-db"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(
        tmp_path_factory.mktemp("cdk-vpc"),
        vpcId="vpc-0123456789abcdef0",
        subnetIds=",".join(SUBNETS),  # as `-c subnetIds=a,b` passes it
        availabilityZones="eu-west-1a,eu-west-1b",
        securityGroupId=SECURITY_GROUP,
        dbSecretArn=DATABASE_SECRET,
        openaiSecretArn=OPENAI_SECRET,
        alarmEmail="invoices-oncall@example.com",
        consumerReservedConcurrency="8",
        consumerMaxConcurrency="4",
        priorityMaxConcurrency="2",
        maxReceiveCount="7",
        scheduleEnabled="false",
    )


def functions(synth: Synthesized) -> dict[str, dict]:
    return synth.of_type("AWS::Lambda::Function")


def ours(synth: Synthesized) -> list[dict]:
    return [f for f in functions(synth).values() if f["Properties"].get("Handler", "").endswith(".handler")]


def test_functions_join_the_given_subnets_with_the_given_security_group(private: Synthesized) -> None:
    pipeline = [f for f in ours(private) if f["Properties"]["Runtime"] == "python3.14"]
    assert len(pipeline) == 3
    for function in pipeline:
        assert function["Properties"]["VpcConfig"] == {"SecurityGroupIds": [SECURITY_GROUP], "SubnetIds": SUBNETS}


ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def test_vpc_functions_may_manage_their_network_interfaces_and_write_only_their_own_logs(private: Synthesized) -> None:
    pipeline = [f for f in ours(private) if f["Properties"]["Runtime"] == "python3.14"]
    assert len(pipeline) == 3
    for function in pipeline:
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert "ManagedPolicyArns" not in private.resources[role]["Properties"]
        granted = [
            statement
            for policy in private.of_type("AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        ec2 = [s for s in granted if any(str(a).startswith("ec2:") for a in s["Action"])]
        assert len(ec2) == 1 and {a for a in ec2[0]["Action"] if a.startswith("ec2:")} == ENI_ACTIONS
        # Merged with the X-Ray actions (also on "*") by minimizePolicies; nothing else shares the wildcard.
        assert {a for a in ec2[0]["Action"] if not a.startswith("ec2:")} <= {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }
        logs = [s for s in granted if any(str(a).startswith("logs:") for a in s["Action"])]
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert logs and all(s["Resource"] == {"Fn::GetAtt": [group, "Arn"]} for s in logs)
        # The policy exists before the function: Lambda checks the ENI permissions when it creates it.
        policy_key = next(
            k for k, p in private.of_type("AWS::IAM::Policy").items() if {"Ref": role} in p["Properties"]["Roles"]
        )
        assert policy_key in function["DependsOn"]


def test_an_existing_openai_secret_is_granted_by_partial_arn_and_none_is_created(private: Synthesized) -> None:
    private.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    resources = [
        statement["Resource"]
        for policy in private.of_type("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "secretsmanager:GetSecretValue" in statement["Action"]
    ]
    flat = {r for resource in resources for r in (resource if isinstance(resource, list) else [resource])}
    assert flat == {f"{OPENAI_SECRET}-??????", f"{DATABASE_SECRET}-??????"}


def test_context_strings_override_numbers_and_keep_max_receive_count_single_sourced(private: Synthesized) -> None:
    mapping = next(iter(private.of_type("AWS::Lambda::EventSourceMapping").values()))["Properties"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == 4
    consumer = next(f for f in ours(private) if f["Properties"]["Handler"] == "consumer.handler")
    assert consumer["Properties"]["ReservedConcurrentExecutions"] == 8
    queue = next(q for q in private.of_type("AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"])
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 7
    assert consumer["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"] == "7"


def test_a_disabled_schedule_is_deployed_disabled(private: Synthesized) -> None:
    private.template.has_resource_properties("AWS::Scheduler::Schedule", {"State": "DISABLED"})


def test_alarm_email_is_subscribed_to_the_alarm_topic(private: Synthesized) -> None:
    private.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "invoices-oncall@example.com"}
    )


def test_cdk_nag_acknowledgment_of_the_eni_wildcard_gives_its_reason(private: Synthesized) -> None:
    rules = [rule for by_rule in private.acknowledgments().values() for rule in by_rule]
    assert not any("AWSLambdaVPCAccessExecutionRole" in rule for rule in rules)
    reasons = [
        reason
        for path, by_rule in private.acknowledgments().items()
        for rule, reason in by_rule.items()
        if rule == "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
        and path.startswith(f"{private.stack.stack_name}/Functions/")
    ]
    assert len(reasons) == 3 and all("network interfaces" in reason for reason in reasons)


def test_cfn_lint_passes_on_the_vpc_template(private: Synthesized) -> None:
    result = cfn_lint(private.template_path)
    assert result.returncode == 0, result.stdout + result.stderr
