"""The deployable package: `chalice package` merged with infra/template.yaml, as AWS gets it.

Packaging downloads the Lambda wheels of requirements.txt into the managed layer (about
10 s; cached in .chalice/deployments until requirements.txt changes) and zips the app code
(about 1 s), so the package is built once for the module. cfn-lint validates the SAM template
directly: it merges Globals itself and needs no SAM translator.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from chalice.app import SQSEventConfig
from chalice.config import Config
from cfnlint.api import ManualArgs, lint_file

from local import infra

PROJECT = Path(__file__).resolve().parent.parent
STAGE = "prod"
DEPLOY_REGIONS = ["ap-east-1"]  # where Cloud Pay runs: cfn-lint checks resource availability there
SERVERLESS_FUNCTION = "AWS::Serverless::Function"


def _chalice_config() -> dict:
    return json.loads((PROJECT / ".chalice" / "config.json").read_text(encoding="utf-8"))


def _function_names(app) -> dict[str, str]:
    """Chalice's name of every Lambda function of the app, by its handler string."""
    names = {"app.app": "api_handler"}
    names.update({auth.handler_string: auth.name for auth in app.builtin_auth_handlers})
    names.update({source.handler_string: source.name for source in app.event_sources})
    names.update({function.handler_string: function.name for function in app.pure_lambda_functions})
    return names


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    """The SAM template of `chalice package --merge-template infra/template.yaml`.

    `chalice package` imports app.py, and the models read their table names at import, so
    the command inherits the test environment (set before anything imports the app).
    Chalice writes YAML, not sam.json, because the merged template is YAML.
    """
    out = tmp_path_factory.mktemp("package")
    chalice = Path(sys.executable).parent / "chalice"
    started = time.perf_counter()
    result = subprocess.run([str(chalice), "package", "--stage", STAGE, "--merge-template", "infra/template.yaml",
                             str(out)], cwd=PROJECT, capture_output=True, text=True)
    print(f"chalice package --stage {STAGE}: {time.perf_counter() - started:.1f} s")
    assert result.returncode == 0, result.stderr
    return out / "sam.yaml"


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return yaml.safe_load(packaged.read_text(encoding="utf-8"))


def _functions(template: dict) -> dict:
    return {name: resource for name, resource in template["Resources"].items()
            if resource["Type"] == SERVERLESS_FUNCTION}


def test_packaged_template_has_no_cfn_lint_errors_or_warnings(packaged):
    matches = lint_file(packaged, config=ManualArgs(regions=DEPLOY_REGIONS))
    found = [f"cfn-lint {match.rule.id} line {match.linenumber}: {match.message}"
             for match in matches if match.rule.id[0] in "EW"]
    assert found == []


def test_every_resource_of_the_infra_template_is_packaged_unchanged(template):
    resources = template["Resources"]
    own = infra.standalone_template()["Resources"]
    assert {"AWS::DynamoDB::Table", "AWS::SQS::Queue"} <= {resource["Type"] for resource in own.values()}
    for name, resource in own.items():
        assert resources.get(name) == resource, name


def test_globals_environment_reaches_every_function(template):
    """SAM merges Globals.Function into every AWS::Serverless::Function, the function's own
    variables winning; so no function may be of another type or shadow a Globals variable."""
    assert template["Globals"]["Function"]["Environment"]["Variables"] == infra.template_env()
    assert not [name for name, resource in template["Resources"].items()
                if resource["Type"] == "AWS::Lambda::Function"], "SAM Globals do not reach plain functions"
    for name, function in _functions(template).items():
        own = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not set(own) & set(infra.template_env()), name


# Chalice cannot ask for partial batch responses; infra/template.yaml adds them per handler.
# For `@app.on_sqs_message(...) def sync_sub_merchants(event)`, Chalice emits the function
# `SyncSubMerchants` with the event `SyncSubMerchantsSqsEventSource` (to_cfn_resource_name of
# `<handler>` and `<handler>-sqs-event-source`). Add under Resources in infra/template.yaml:
#
#   SyncSubMerchants:
#     Properties:
#       Events:
#         SyncSubMerchantsSqsEventSource:
#           Properties:
#             FunctionResponseTypes: [ReportBatchItemFailures]
#
# Override nothing else there: the merge is a deep merge, so an intrinsic given for `Queue`
# lands next to Chalice's own `Fn::Sub` in one object (cfn-lint rejects it). The entry has no
# Type, so the local stack leaves it out.
def test_every_sqs_handler_reports_batch_item_failures(template):
    """Without it one bad message makes Lambda retry the whole batch, the good ones too."""
    from app import app

    sqs_handlers = {source.handler_string for source in app.event_sources if isinstance(source, SQSEventConfig)}
    handlers_with_sqs_events = set()
    for name, function in _functions(template).items():
        for event_name, event in function["Properties"].get("Events", {}).items():
            if event["Type"] == "SQS":
                handlers_with_sqs_events.add(function["Properties"]["Handler"])
                assert event["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"], \
                    f"{name}.{event_name}: add the override described above this test"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            assert resource["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"], name
    assert handlers_with_sqs_events == sqs_handlers


def test_every_function_has_its_own_role_with_its_policy_file(template):
    from app import app

    names = _function_names(app)
    functions = _functions(template)
    resources = template["Resources"]
    assert {function["Properties"]["Handler"] for function in functions.values()} == set(names)
    roles = {name: function["Properties"]["Role"]["Fn::GetAtt"][0] for name, function in functions.items()}
    assert len(set(roles.values())) == len(functions), roles
    for name, function in functions.items():
        role = resources[roles[name]]
        assert role["Type"] == "AWS::IAM::Role"
        [policy] = role["Properties"]["Policies"]
        chalice_name = names[function["Properties"]["Handler"]]
        policy_file = Config(chalice_stage=STAGE, function_name=chalice_name,
                             config_from_disk=_chalice_config()).iam_policy_file
        expected = json.loads((PROJECT / ".chalice" / policy_file).read_text(encoding="utf-8"))
        assert policy["PolicyDocument"] == expected, name


def test_every_stage_gives_each_function_its_own_policy_and_no_shadowing_variables():
    """Checked on the config for all stages, since only one stage is packaged above.

    Stage-level keys win over top-level `lambda_functions`, so a stage-wide
    `iam_policy_file` would silently give every function the same policy.
    """
    from app import app

    config = _chalice_config()
    for stage in config["stages"]:
        policy_files = set()
        for function_name in _function_names(app).values():
            scoped = Config(chalice_stage=stage, function_name=function_name, config_from_disk=config)
            assert scoped.autogen_policy is False, (stage, function_name)
            assert scoped.iam_policy_file, f"give {function_name} an iam_policy_file under lambda_functions"
            assert (PROJECT / ".chalice" / scoped.iam_policy_file).is_file(), (stage, function_name)
            assert not set(scoped.environment_variables) & set(infra.template_env()), (stage, function_name)
            policy_files.add(scoped.iam_policy_file)
        assert len(policy_files) == len(_function_names(app)), stage



# --- deploy safety: IAM scoped to the stack, secrets in SSM, data retained, alarms -------------
#
# The policy files in .chalice/ are the one source of each function's permissions. They name
# resources with CloudFormation's own substitutions (`{"Fn::Sub": "${OrdersTable.Arn}"}`,
# `${AWS::Region}`, `${AWS::AccountId}`, `${AWS::StackName}`), which Chalice copies into the
# role and CloudFormation resolves at deploy. The tests below render them as CloudFormation
# would for the stack `cloudpay-prod` in ACCOUNT and DEPLOY_REGIONS[0], and check every role
# of the packaged template, so a function added later is checked without being listed here.

ACCOUNT = "123456789012"
STACK = f"cloudpay-{STAGE}"
ALARM_TOPIC = {"Ref": "AlarmTopicArn"}
STAR_ONLY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}
"""Actions without resource-level permissions: IAM requires `Resource: "*"` for them (and
in a KMS key policy, "*" means the key itself). No function uses them today."""
SECRET_VARIABLES = {"PLATFORM_SIGNING_KEY_PARAMETER": "platform-signing-key",
                    "WECHAT_APP_SECRET_PARAMETER": "wechat-app-secret",
                    "MAIDAN_API_KEY_PARAMETER": "maidan-api-key"}
SECRETS_NEEDED = {"APIHandler": set(SECRET_VARIABLES), "SyncSubMerchantPages": {"MAIDAN_API_KEY_PARAMETER"},
                  "SweepOpenOrders": {"MAIDAN_API_KEY_PARAMETER"}, "SweepProcessingRefunds": {"MAIDAN_API_KEY_PARAMETER"},
                  "FollowUpPaidOrders": {"WECHAT_APP_SECRET_PARAMETER"},
                  "AttemptDueDeliveries": {"WECHAT_APP_SECRET_PARAMETER"}}
"""Who signs cookies/cursors/OAuth state, calls WeChat OAuth or 买单, or sends clerk messages
(the follow-up and its retries need the official account's token). Nobody else
(the authorizer, the sweeps, the other queue handlers) gets any platform secret."""
EPHEMERAL_TABLES = {"SessionsTable", "LoginAttemptsTable", "IdempotencyTable"}
"""Deletable with the stack: short-lived (TTL) records recreated by signing in or resending."""


def _render(template: dict, node) -> str:
    """A policy's ARN or name as CloudFormation resolves it for STACK in ACCOUNT/region."""
    resources = template["Resources"]
    pseudo = {"AWS::Region": DEPLOY_REGIONS[0], "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK,
              "AWS::Partition": "aws"}

    def arn_of(logical: str) -> str:
        resource = resources[logical]
        if resource["Type"] == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{DEPLOY_REGIONS[0]}:{ACCOUNT}:table/{ref(logical)}"
        if resource["Type"] == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{DEPLOY_REGIONS[0]}:{ACCOUNT}:{_render(template, resource['Properties']['QueueName'])}"
        if resource["Type"] == "AWS::KMS::Key":
            return f"arn:aws:kms:{DEPLOY_REGIONS[0]}:{ACCOUNT}:key/{logical}-id"
        raise AssertionError(f"teach _render the Arn of {resource['Type']}")

    def ref(name: str) -> str:
        if name in pseudo:
            return pseudo[name]
        resource = resources[name]
        if resource["Type"] == "AWS::DynamoDB::Table":
            return _render(template, resource["Properties"]["TableName"])
        raise AssertionError(f"teach _render the Ref of {resource['Type']}")

    def substitute(match) -> str:
        name, _, attribute = match.group(1).partition(".")
        return arn_of(name) if attribute == "Arn" else ref(name)

    if isinstance(node, str):
        return node
    if "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", substitute, node["Fn::Sub"])
    if "Fn::GetAtt" in node and node["Fn::GetAtt"][1] == "Arn":
        return arn_of(node["Fn::GetAtt"][0])
    if "Ref" in node:
        return ref(node["Ref"])
    raise AssertionError(f"teach _render {node}")


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _role_statements(template: dict) -> dict[str, tuple[str, list[dict]]]:
    """Every function's logical name -> (its role's name, its policy statements)."""
    roles = {}
    for name, function in _functions(template).items():
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        roles[name] = (role, [statement for policy in template["Resources"][role]["Properties"]["Policies"]
                              for statement in policy["PolicyDocument"]["Statement"]])
    return roles


def _granted(template: dict, statements: list[dict], action: str) -> set[str]:
    return {_render(template, resource) for statement in statements if action in _listed(statement["Action"])
            for resource in _listed(statement["Resource"])}


def _secret_variables(template: dict, function: dict) -> dict[str, str]:
    """The function's own variables that name a platform secret's SSM parameter, rendered."""
    own = function["Properties"].get("Environment", {}).get("Variables", {})
    return {name: _render(template, value) for name, value in own.items() if name.endswith("_PARAMETER")}


def test_every_function_policy_names_only_its_own_stages_resources_in_its_region_and_account(template):
    """A dev stage in the same account must not reach prod's tables, queues, keys or secrets."""
    assert len(_role_statements(template)) == len(_functions(template))
    for function, (role, statements) in _role_statements(template).items():
        for statement in statements:
            where = f"{role} {statement.get('Sid')}"
            actions = set(_listed(statement["Action"]))
            resources = _listed(statement["Resource"])
            if resources == ["*"]:
                assert actions <= STAR_ONLY_ACTIONS, f"{where}: Resource \"*\" for {actions}"
                continue
            for resource in resources:
                arn = _render(template, resource)
                _, partition, service, region, account, name = arn.split(":", 5)
                assert (region, account) == (DEPLOY_REGIONS[0], ACCOUNT), f"{where}: {arn}"
                assert "cloudpay-*" not in arn, f"{where}: {arn}"
                if service == "kms":
                    conditions = statement.get("Condition", {}).get("StringEquals", {})
                    assert name == "key/SecretsKey-id" or "kms:EncryptionContext:PARAMETER_ARN" in conditions, where
                else:
                    assert STACK in name, f"{where}: {arn} is not this stack's"
                if service == "logs":
                    assert name.startswith(f"log-group:/aws/lambda/{STACK}-{function}-"), f"{where}: {arn}"


def test_secrets_key_grants_are_bound_to_the_encryption_contexts_each_function_uses(template):
    """chalicelib/secrets.py encrypts with purpose=cloudpay-secret and the field's name."""
    for function, (role, statements) in _role_statements(template).items():
        for statement in statements:
            kms_actions = {action for action in _listed(statement["Action"]) if action.startswith("kms:")}
            if not kms_actions:
                continue
            assert kms_actions <= {"kms:Encrypt", "kms:Decrypt"}, f"{role}: {kms_actions}"
            conditions = statement["Condition"]["StringEquals"]
            if "kms:EncryptionContext:PARAMETER_ARN" in conditions:  # an SSM SecureString, read through SSM
                assert kms_actions == {"kms:Decrypt"} and conditions["kms:ViaService"]
                continue
            assert conditions["kms:EncryptionContext:purpose"] == "cloudpay-secret", role
            assert conditions["kms:EncryptionContext:field"], role


def test_each_function_can_read_exactly_the_platform_secrets_it_needs(template):
    for function, (role, statements) in _role_statements(template).items():
        variables = _secret_variables(template, template["Resources"][function])
        assert set(variables) == SECRETS_NEEDED.get(function, set()), function
        expected = {f"arn:aws:ssm:{DEPLOY_REGIONS[0]}:{ACCOUNT}:parameter{name}" for name in variables.values()}
        assert {name for variable, name in variables.items()} == \
            {f"/{STACK}/{SECRET_VARIABLES[variable]}" for variable in variables}, function
        assert _granted(template, statements, "ssm:GetParameter") == expected, role
        decrypt_contexts = {_render(template, arn) for statement in statements
                            for arn in _listed(statement.get("Condition", {}).get("StringEquals", {})
                                               .get("kms:EncryptionContext:PARAMETER_ARN", []))}
        assert decrypt_contexts == expected, role


def test_no_secret_value_is_in_any_functions_environment(template, packaged):
    """Secrets reach functions as SSM parameter names only: no variable holds a secret, none
    refers to a template parameter that would carry one, and no test secret is in the text."""
    from tests.environment import SECRETS

    echo_free = {name for name, spec in template["Parameters"].items() if spec.get("NoEcho")}
    assert echo_free == set(), "a NoEcho parameter is a secret passed through the stack: use SSM"
    environments = [template["Globals"]["Function"]["Environment"]["Variables"]] + \
        [function["Properties"].get("Environment", {}).get("Variables", {}) for function in _functions(template).values()]
    for variables in environments:
        assert not {"PLATFORM_SIGNING_KEY", "WECHAT_APP_SECRET", "MAIDAN_API_KEY"} & set(variables)
    text = packaged.read_text(encoding="utf-8")
    assert not [value for value in SECRETS.values() if value in text]


def test_business_tables_and_their_key_survive_deleting_or_replacing_the_stack(template):
    tables = {name for name, resource in template["Resources"].items() if resource["Type"] == "AWS::DynamoDB::Table"}
    assert EPHEMERAL_TABLES <= tables
    for name in sorted(tables - EPHEMERAL_TABLES) + ["SecretsKey"]:
        resource = template["Resources"][name]
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain"), name


def _alarms(template: dict) -> list[dict]:
    return [resource["Properties"] for resource in template["Resources"].values()
            if resource["Type"] == "AWS::CloudWatch::Alarm"]


def _alarmed(template: dict, namespace: str, metric: str, dimension: str) -> list:
    """What the alarms on `metric` watch: the values of their one `dimension`, each alarm
    going off on any value above 0 and notifying the alarm topic."""
    watched = []
    for alarm in _alarms(template):
        if (alarm["Namespace"], alarm["MetricName"]) != (namespace, metric):
            continue
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), alarm
        assert alarm["AlarmActions"] == [ALARM_TOPIC], alarm
        [only] = alarm["Dimensions"]
        assert only["Name"] == dimension, alarm
        watched.append(only["Value"])
    return watched


def test_every_dead_letter_queue_has_an_alarm_on_its_depth(template):
    dead_letter_queues = {resource["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                          for resource in template["Resources"].values()
                          if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in resource["Properties"]}
    assert len(dead_letter_queues) >= 2
    watched = _alarmed(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    assert sorted(value["Fn::GetAtt"][0] for value in watched) == sorted(dead_letter_queues)
    assert template["Parameters"]["AlarmTopicArn"]["Type"] == "String"


def test_every_function_has_an_alarm_on_its_errors(template):
    watched = _alarmed(template, "AWS/Lambda", "Errors", "FunctionName")
    assert sorted(value["Ref"] for value in watched) == sorted(_functions(template))


def test_the_files_the_readme_deploy_steps_name_are_the_ones_make_package_writes(packaged):
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    deploy = readme[readme.index("## Deploying to AWS"):]
    deploy = deploy[:deploy.index("\n## ", 1)]
    make_package_dir = re.search(r"bash scripts/package.sh (\S+)", (PROJECT / "Makefile").read_text()).group(1)
    named = set(re.findall(rf"{re.escape(make_package_dir)}/([\w.-]+)", deploy))

    assert named == {"sam.yaml"}
    assert all((packaged.parent / name).is_file() for name in named)
