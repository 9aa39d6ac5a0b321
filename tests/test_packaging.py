"""The deployable package: `chalice package` merged with infra/template.yaml, as AWS gets it.

Packaging downloads the Lambda wheels of requirements.txt into the managed layer (about
10 s; cached in .chalice/deployments until requirements.txt changes) and zips the app code
(about 1 s), so the package is built once for the module. cfn-lint validates the SAM template
directly: it merges Globals itself and needs no SAM translator.
"""
from __future__ import annotations

import json
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


def test_packaged_template_has_no_cfn_lint_errors(packaged):
    matches = lint_file(packaged, config=ManualArgs(regions=DEPLOY_REGIONS))
    for warning in (match for match in matches if not match.rule.id.startswith("E")):
        print(f"cfn-lint {warning.rule.id} line {warning.linenumber}: {warning.message}")
    errors = [f"{match.rule.id} line {match.linenumber}: {match.message}"
              for match in matches if match.rule.id.startswith("E")]
    assert errors == []


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
