"""Create infra/template.yaml in moto, and resolve the app's environment from the stack.

The same template is merged into `chalice package` for AWS; here the parts that only make
sense next to Chalice's own resources (Globals, overrides of Chalice-made resources) are
dropped before the stack is created, and Globals' variables are resolved from the stack's
physical resources, so local and AWS read the same variable names from the same Refs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub) read as their long forms."""


def _tag(name):
    def construct(loader, node):
        if name == "Fn::GetAtt" and isinstance(node, yaml.ScalarNode):
            return {name: loader.construct_scalar(node).split(".", 1)}
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            return {"Ref": value} if name == "Ref" else {name: value}
        if isinstance(node, yaml.SequenceNode):
            return {name: loader.construct_sequence(node, deep=True)}
        return {name: loader.construct_mapping(node, deep=True)}
    return construct


for _short, _long in {"!Ref": "Ref", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!Join": "Fn::Join"}.items():
    _CfnLoader.add_constructor(_short, _tag(_long))


def load_template() -> dict:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)


CHALICE_RESOURCES = {"RestAPI", "APIHandler"}


def _refers_to_chalice(node) -> bool:
    if isinstance(node, dict):
        if node.get("Ref") in CHALICE_RESOURCES:
            return True
        return any(_refers_to_chalice(value) for value in node.values())
    if isinstance(node, list):
        return any(_refers_to_chalice(value) for value in node)
    return False


def standalone_template() -> dict:
    """The template without what only exists once Chalice's resources are merged in:
    Globals, overrides of Chalice-made resources, and resources that refer to them."""
    template = load_template()
    template.pop("Globals", None)
    template["Resources"] = {name: resource for name, resource in template["Resources"].items()
                             if "Type" in resource and not _refers_to_chalice(resource)}
    return template


def create_stack(session, stack_name: str, parameters: dict[str, str]) -> dict[str, str]:
    """Create the stack, switch on TTL (moto's CloudFormation ignores it), return the env."""
    template = standalone_template()
    cloudformation = session.client("cloudformation")
    cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template),
                                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]}
    dynamodb = session.client("dynamodb")
    for name, resource in template["Resources"].items():
        ttl = resource.get("Properties", {}).get("TimeToLiveSpecification")
        if resource["Type"] == "AWS::DynamoDB::Table" and ttl:
            dynamodb.update_time_to_live(TableName=physical[name], TimeToLiveSpecification=ttl)
    return resolve_environment(session, template_env(), physical, parameters)


def template_env() -> dict:
    return load_template()["Globals"]["Function"]["Environment"]["Variables"]


def _arn(session, logical: str, physical_id: str) -> str:
    resource_type = standalone_template()["Resources"][logical]["Type"]
    if resource_type == "AWS::SQS::Queue":
        return session.client("sqs").get_queue_attributes(
            QueueUrl=physical_id, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if resource_type == "AWS::KMS::Key":
        return session.client("kms").describe_key(KeyId=physical_id)["KeyMetadata"]["Arn"]
    raise ValueError(f"no Arn resolver for {resource_type}")


def resolve_environment(session, variables: dict, physical: dict, parameters: dict) -> dict[str, str]:
    defaults = {name: spec["Default"] for name, spec in load_template()["Parameters"].items() if "Default" in spec}
    given = {**defaults, **parameters}

    def ref(name: str) -> str:
        return given[name] if name in given else physical[name]

    def value(node) -> str:
        if isinstance(node, str):
            return node
        if "Ref" in node:
            return ref(node["Ref"])
        if "Fn::GetAtt" in node:
            logical, attribute = node["Fn::GetAtt"]
            if attribute != "Arn":
                raise ValueError(f"unsupported GetAtt attribute {attribute}")
            return _arn(session, logical, physical[logical])
        if "Fn::Sub" in node:
            return re.sub(r"\$\{([^}]+)\}", lambda m: ref(m.group(1)), node["Fn::Sub"])
        raise ValueError(f"unsupported intrinsic {node}")

    return {name: value(node) for name, node in variables.items()}
