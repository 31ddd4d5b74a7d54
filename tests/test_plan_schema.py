"""data/plan.schema.json: a real plan validates; plans broken in each way the schema pins down do not."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft202012Validator

from hetplan.planner.catalog import DATA_DIR

SCHEMA = json.loads((DATA_DIR / "plan.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


@pytest.fixture(scope="module")
def plan() -> dict:
    from hetplan.planner.optimize.workflow import PlanRequest, make_plan

    return json.loads(make_plan(PlanRequest(slo_s=0.2, hours=1, time_limit_s=10, gap=0.05)).to_json())


def errors(plan: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(plan)]


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["properties"]["schema_version"] == {"const": 1}


def test_real_plan_validates(plan):
    assert errors(plan) == []
    assert {o["platform"] for o in plan["options"]} == {"vm", "lambda"}  # both option shapes were checked


def test_plan_with_every_nullable_null_validates(plan):
    p = copy.deepcopy(plan)
    p["targets"].update(min_accuracy=None, mean_accuracy=None)
    p["limits"].update(lambda_concurrency=None, budget_usd=None, horizon_start_s=None)
    p["solver"].update(bound_usd=None, gap=None, lp_bound_usd=None)
    p["summary"]["mean_accuracy"] = None
    p["windows"][0]["mean_accuracy"] = None
    assert errors(p) == []


def first_vm(p):
    return next(a for w in p["windows"] for a in w["assignments"] if a["platform"] == "vm")


def first_lambda_option(p):
    return next(o for o in p["options"] if o["platform"] == "lambda")


BROKEN = {
    "missing top-level key": (lambda p: p.pop("summary"), "'summary' is a required property"),
    "missing inputs digest": (lambda p: p["inputs"]["models"].pop("digest"), "'digest' is a required property"),
    "bad digest": (lambda p: p["inputs"]["trace"].update(digest="md5:abc"), "does not match"),
    "schema_version 2": (lambda p: p.update(schema_version=2), "1 was expected"),
    "wrong kind": (lambda p: p.update(kind="plan"), "'hetplan.plan' was expected"),
    "bad platform": (lambda p: p["options"][0].update(platform="k8s"), "is not one of ['vm', 'lambda']"),
    "bad assignment platform": (lambda p: first_vm(p).update(platform="ec2"), "is not one of ['vm', 'lambda']"),
    "bad solver status": (lambda p: p["solver"].update(status="infeasible"), "is not one of ['optimal', 'feasible']"),
    "count as string": (lambda p: first_vm(p).update(count="2"), "'2' is not of type 'integer'"),
    "fractional count": (lambda p: first_vm(p).update(count=1.5), "1.5 is not of type 'integer'"),
    "negative rate": (lambda p: first_vm(p).update(rate_rps=-1.0), "less than the minimum of 0"),
    "null slo": (lambda p: p["targets"].update(slo_ms=None), "None is not of type 'number'"),
    "null VM price": (lambda p: next(o for o in p["options"] if o["platform"] == "vm").update(price_per_hour_usd=None),
                      "None is not of type 'number'"),
    "lambda with instance type": (lambda p: first_lambda_option(p).update(instance_type="c5.large"),
                                  "'c5.large' is not of type 'null'"),
    "lambda without cost per request": (lambda p: first_lambda_option(p).pop("cost_per_request_usd"),
                                        "'cost_per_request_usd' is a required property"),
    "accuracy in percent": (lambda p: p["options"][0].update(accuracy=72.5), "greater than the maximum of 1"),
    "windows not a list": (lambda p: p.update(windows={}), "is not of type 'array'"),
    "no windows": (lambda p: p.update(windows=[]), "should be non-empty"),
    "quota not a count": (lambda p: p["limits"].update(quotas={"c5.large": "ten"}), "'ten' is not of type 'integer'"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_plan_is_rejected(plan, name):
    edit, message = BROKEN[name]
    p = copy.deepcopy(plan)
    edit(p)
    found = errors(p)
    assert found, f"{name}: the schema accepted it"
    assert any(message in e for e in found), found
