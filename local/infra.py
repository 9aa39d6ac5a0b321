"""Create infra/template.yaml in moto, and resolve the app's environment from the stack.

The same template is merged into `chalice package` for AWS; here the parts that only make
sense next to Chalice's own resources (Globals, overrides of Chalice-made resources and
whatever refers to them) are dropped before the stack is created, and the functions'
variables are resolved from the stack's physical resources, so local and AWS read the same
variable names from the same Refs. All functions share one process locally, so the local
environment is Globals plus every function's own variables.

The platform's secrets are SSM SecureString parameters, which CloudFormation cannot create:
on AWS the deploy step creates them (README), here `create_stack` puts them into moto.
"""
from __future__ import annotations

import copy
import functools
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
    """The template as a new dict the caller may change. A process reads it several times
    (the moto stack, the environment, the gateway's answers) and parsing costs ~0.35 s of
    CPU each time, so one text is parsed once and copied."""
    return copy.deepcopy(_parse_template(TEMPLATE.read_text(encoding="utf-8")))


@functools.lru_cache(maxsize=1)
def _parse_template(text: str) -> dict:
    return yaml.load(text, Loader=_CfnLoader)


NOT_IN_MOTO_CLOUDFORMATION = {"AWS::CloudWatch::Alarm"}
"""Types moto's CloudFormation skips with a warning; nothing local reads alarms."""


def _references(node) -> set[str]:
    """The logical ids and parameters a piece of template refers to (Ref, GetAtt, Sub)."""
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node))
    if not isinstance(node, dict):
        return set()
    found = set()
    if isinstance(node.get("Ref"), str):
        found.add(node["Ref"])
    if isinstance(node.get("Fn::GetAtt"), list):
        found.add(node["Fn::GetAtt"][0])
    if isinstance(node.get("Fn::Sub"), str):
        found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", node["Fn::Sub"])}
    return found | set().union(*(_references(value) for key, value in node.items() if key != "Ref"))


def standalone_template() -> dict:
    """The template without what only exists once Chalice's resources are merged in:
    Globals, overrides of Chalice-made resources (entries without a Type), resources that
    refer to Chalice's (RestAPI, the functions), and the types moto cannot create."""
    template = load_template()
    template.pop("Globals", None)
    resources = {name: resource for name, resource in template["Resources"].items()
                 if "Type" in resource and resource["Type"] not in NOT_IN_MOTO_CLOUDFORMATION}
    known = set(resources) | set(template.get("Parameters", {}))
    template["Resources"] = {name: resource for name, resource in resources.items()
                             if all(ref in known or ref.startswith("AWS::") for ref in _references(resource))}
    return template


def create_stack(session, stack_name: str, parameters: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """Create the stack, switch on TTL (moto's CloudFormation ignores it), put the platform's
    secrets into SSM, return the env.

    `secrets` maps each `*_PARAMETER` variable of function_env() to its secret value."""
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
    environment = resolve_environment(session, {**template_env(), **function_env()}, physical,
                                      {**parameters, "AWS::StackName": stack_name})
    put_secret_parameters(session, {environment[variable]: value for variable, value in secrets.items()})
    return environment


def put_secret_parameters(session, values: dict[str, str]) -> None:
    """What the README's deploy step does with `aws ssm put-parameter --type SecureString`."""
    ssm = session.client("ssm")
    for name, value in values.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def template_env() -> dict:
    """The variables every function gets (Globals)."""
    return load_template()["Globals"]["Function"]["Environment"]["Variables"]


def function_env() -> dict:
    """The variables only some functions get (the template's overrides of Chalice-made
    functions), merged: locally one process serves every function, so it gets them all."""
    variables = {}
    for resource in load_template()["Resources"].values():
        if "Type" not in resource:
            variables.update(resource.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    return variables


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
