"""The independent plan check: a real solved plan passes, and each kind of tampering is caught by name."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetplan.planner import catalog
from hetplan.errors import HetplanError
from hetplan.planner.optimize.evaluate import evaluate

from plan_edits import tampered


@pytest.fixture(scope="module")
def plan() -> dict:
    """2 h of WITS at 5-min windows (24 windows), VMs sized without overflow (so Lambda takes a share)."""
    import json

    from hetplan.planner.optimize.workflow import PlanRequest, make_plan

    return json.loads(make_plan(PlanRequest(slo_s=0.2, hours=2, time_limit_s=10, gap=0.05, overflow=False)).to_json())


def vm_assignment(p: dict, busy: float = 0.0):
    """(window, assignment) of the first VM assignment running at ``busy`` × its capacity or more."""
    caps = {o["option"]: o["capacity_rps"] for o in p["options"]}
    for w in p["windows"]:
        for a in w["assignments"]:
            if a["platform"] != "vm":
                continue
            if a["rate_rps"] < busy * a["count"] * caps[a["option"]]:
                continue
            return w, a
    raise AssertionError("the plan has no such VM assignment")


def option(p: dict, name: str) -> dict:
    return next(o for o in p["options"] if o["option"] == name)


# --- a real plan ---------------------------------------------------------------------------------------

def test_real_plan_passes_and_costs_match(plan):
    result = evaluate(plan)
    assert result.ok, [str(v) for v in result.violations]
    assert result.violations == ()
    assert result.total_cost_usd == pytest.approx(plan["summary"]["total_cost_usd"], rel=1e-9)
    assert result.vm_cost_usd == pytest.approx(plan["summary"]["vm_cost_usd"], rel=1e-9)
    assert result.lambda_cost_usd == pytest.approx(plan["summary"]["lambda_cost_usd"], rel=1e-9)
    assert result.mean_accuracy == pytest.approx(plan["summary"]["mean_accuracy"], rel=1e-9)
    assert result.mean_accuracy >= plan["targets"]["mean_accuracy"] - 1e-9


def test_real_plan_uses_both_platforms_and_launches(plan):
    """The tamper tests below need VMs, launches and Lambda in the plan."""
    platforms = {a["platform"] for w in plan["windows"] for a in w["assignments"]}
    assert platforms == {"vm", "lambda"}
    assert any(a["launches"] > 0 for w in plan["windows"] for a in w["assignments"])


def test_catalogs_can_be_passed_in(plan):
    result = evaluate(plan, instances=catalog.load_instances(), serverless=catalog.load_serverless(),
                      models=catalog.load_models())
    assert result.ok


def test_does_not_import_the_planner_it_checks():
    code = ("import sys, hetplan.planner.optimize.evaluate; "
            "print(sorted(m for m in sys.modules if m.split('.')[-1] in ('plan', 'model', 'solvers', 'solve')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- tampering: each caught with the right constraint ------------------------------------------------------

def test_raised_rate_breaks_demand(plan):
    def edit(p):
        p["windows"][3]["assignments"][0]["rate_rps"] *= 1.01
    result = tampered(plan, edit)
    assert not result.ok
    assert "demand-window" in result.constraints
    assert any(v.window == 3 for v in result.violations if v.constraint == "demand-window")


@given(window=st.integers(0, 23), factor=st.floats(1.001, 3.0))
@settings(max_examples=10, deadline=None)
def test_any_raised_rate_is_caught(plan, window, factor):
    def edit(p):
        p["windows"][window]["assignments"][-1]["rate_rps"] *= factor
    assert "demand-window" in tampered(plan, edit).constraints


ASSIGNMENT_FIELDS = ("rate_rps", "share", "cost_usd", "utilization", "expected_latency_ms", "memory_mb", "count", "launches")
WINDOW_FIELDS = ("demand_rps", "mean_rps", "start_s", "end_s", "cost_usd", "mean_accuracy")


@given(window=st.integers(0, 23), pick=st.integers(0, 9), field=st.sampled_from(ASSIGNMENT_FIELDS + WINDOW_FIELDS),
       factor=st.one_of(st.floats(0.5, 0.999), st.floats(1.001, 2.0)))
@settings(max_examples=25, deadline=None)
def test_no_number_in_a_window_can_be_changed_unnoticed(plan, window, pick, field, factor):
    p = copy.deepcopy(plan)
    w = p["windows"][window]
    if field in ASSIGNMENT_FIELDS:
        record = w["assignments"][pick % len(w["assignments"])]
        if record[field] is None:
            return  # a Lambda assignment's utilization
    else:
        record = w
    if field in ("count", "launches"):
        record[field] += 1
    elif field in ("start_s", "end_s"):
        record[field] += 60.0 * factor
    else:  # a relative change of at least 0.1%; zeros (an idle VM's rate) move by 0.001
        record[field] = record[field] * factor if record[field] else abs(factor - 1)
    assert not evaluate(p).ok, (window, field, factor)


def test_dropped_vm_breaks_capacity(plan):
    w, a = vm_assignment(plan, busy=0.5)  # so one VM less cannot carry it

    def edit(p):
        p["windows"][w["index"]]["assignments"][w["assignments"].index(a)]["count"] -= 1
    result = tampered(plan, edit)
    assert "capacity-vm" in result.constraints
    assert any(v.window == w["index"] and v.option == a["option"] for v in result.violations if v.constraint == "capacity-vm")


def test_changed_vm_price_is_caught_once(plan):
    def edit(p):
        _, a = vm_assignment(p)
        option(p, a["option"])["price_per_hour_usd"] *= 0.5
    result = tampered(plan, edit)
    assert result.constraints == {"catalog-price"}
    # the cost is recomputed from the catalog, so it still matches the (honest) plan
    assert result.total_cost_usd == pytest.approx(plan["summary"]["total_cost_usd"], rel=1e-9)


def test_changed_lambda_price_is_caught(plan):
    def edit(p):
        next(o for o in p["options"] if o["platform"] == "lambda")["cost_per_request_usd"] *= 0.9
    assert "catalog-price" in tampered(plan, edit).constraints


def test_shorter_boot_is_caught(plan):
    def edit(p):
        next(o for o in p["options"] if o["platform"] == "vm")["boot_seconds"] = 10.0
    assert "catalog-price" in tampered(plan, edit).constraints


def test_a_dearer_catalog_is_caught(plan):
    prices = catalog.load_instances().copy()
    prices["price_per_hour_usd"] *= 1.1
    result = evaluate(plan, instances=prices)
    assert "catalog-price" in result.constraints
    assert result.vm_cost_usd == pytest.approx(plan["summary"]["vm_cost_usd"] * 1.1, rel=1e-9)


def test_other_architecture_lambda_prices_are_caught(plan):
    result = evaluate(plan, serverless=catalog.load_serverless(architecture="arm64"))
    assert "catalog-price" in result.constraints
    assert result.lambda_cost_usd < plan["summary"]["lambda_cost_usd"]


def test_changed_input_file_is_caught(plan):
    def edit(p):
        p["inputs"]["instances"]["digest"] = "sha256:" + "0" * 64
    assert tampered(plan, edit).constraints == {"inputs"}


def test_moved_input_file_falls_back_to_the_same_shipped_catalog(plan):
    def edit(p):
        p["inputs"]["instances"]["path"] = "/nonexistent/instances.csv"
    assert tampered(plan, edit).ok  # the shipped catalog has the recorded digest


def test_edited_input_file_is_caught(plan, tmp_path):
    edited = tmp_path / "instances.csv"
    edited.write_text(catalog.DEFAULT_INSTANCES.read_text().replace(",0.34,", ",0.44,"))  # c5.2xlarge and peers
    p = copy.deepcopy(plan)
    p["inputs"]["instances"]["path"] = str(edited)
    result = evaluate(p)
    assert {"inputs", "catalog-price"} <= result.constraints
    assert result.vm_cost_usd > plan["summary"]["vm_cost_usd"]
    assert evaluate(plan, instances=str(edited)).constraints == result.constraints


def test_lowered_option_accuracy_is_caught(plan):
    def edit(p):
        _, a = vm_assignment(p)
        option(p, a["option"])["accuracy"] -= 0.05
    assert "catalog-accuracy" in tampered(plan, edit).constraints


def test_raised_option_accuracy_cannot_fake_the_target(plan):
    """Accuracy is taken from the catalog, so an inflated option cannot make a low-accuracy mix pass."""
    def edit(p):
        p["targets"]["mean_accuracy"] = 0.72
        for o in p["options"]:
            o["accuracy"] = 0.80
    result = tampered(plan, edit)
    assert {"catalog-accuracy", "accuracy-window"} <= result.constraints


def test_accuracy_target_above_the_mix_is_caught(plan):
    def edit(p):
        p["targets"]["mean_accuracy"] = 0.724
    result = tampered(plan, edit)
    assert result.constraints == {"accuracy-window"}


def test_min_accuracy_is_caught(plan):
    def edit(p):
        p["targets"]["min_accuracy"] = 0.60  # the plan mixes in squeezenet (55.4%)
    assert "min-accuracy" in tampered(plan, edit).constraints


def test_broken_launches_are_caught(plan):
    def edit(p):
        a = next(a for w in p["windows"] for a in w["assignments"] if a["launches"] > 0)
        a["launches"] = 0
    assert "launch-vm" in tampered(plan, edit).constraints


def test_initial_vms_remove_launches(plan):
    """A VM already serving needs no launch: the plan's launch of it is then wrong."""
    def edit(p):
        a = next(a for w in p["windows"] for a in w["assignments"] if a["launches"] > 0)
        p["limits"]["initial_vms"] = {a["option"]: a["count"]}
    assert "launch-vm" in tampered(plan, edit).constraints


def test_launch_before_ready_is_caught(plan):
    t = next(w["index"] for w in plan["windows"][1:] if any(a["launches"] for a in w["assignments"]))

    def edit(p):
        p["limits"]["horizon_start_s"] = p["windows"][t]["start_s"] - 50  # VMs boot 100 s
    result = tampered(plan, edit)
    assert result.constraints == {"no-launch-before-ready"}
    assert t in {v.window for v in result.violations}


def test_exceeding_the_slo_by_lowering_throughput_is_caught(plan):
    def edit(p):
        _, a = max(((w, a) for w in p["windows"] for a in w["assignments"] if a["platform"] == "vm" and a["count"]),
                   key=lambda wa: wa[1]["utilization"])
        o = option(p, a["option"])
        o["throughput_rps"] *= a["utilization"]  # that window now runs its VMs at 100%
        o["capacity_rps"] *= a["utilization"]
    result = tampered(plan, edit)
    assert "latency-slo" in result.constraints
    assert "utilization-cap" in result.constraints  # the window's capacity now exceeds the throughput


def test_utilization_cap_above_the_slo_is_caught(plan):
    def edit(p):
        o = next(o for o in p["options"] if o["platform"] == "vm" and o["utilization_cap"] < 0.9)
        o["utilization_cap"] = 0.95
    assert "utilization-cap" in tampered(plan, edit).constraints


def test_slow_lambda_is_caught(plan):
    def edit(p):
        p["targets"]["slo_ms"] = 100  # the Lambda options take 144-160 ms
    assert "latency-slo" in tampered(plan, edit).constraints


def test_inflated_assignment_cost_is_caught(plan):
    def edit(p):
        p["windows"][5]["assignments"][0]["cost_usd"] *= 1.5
    result = tampered(plan, edit)
    assert "cost" in result.constraints
    assert any(v.window == 5 for v in result.violations)


def test_inflated_total_cost_is_caught(plan):
    def edit(p):
        p["summary"]["total_cost_usd"] *= 1.01
    assert tampered(plan, edit).constraints == {"cost"}


def test_wrong_summary_is_caught(plan):
    def edit(p):
        p["summary"]["mean_accuracy"] += 0.01
        p["summary"]["vm_hours"] = {}
    assert tampered(plan, edit).constraints == {"summary"}


def test_lambda_concurrency_is_caught(plan):
    latency = {o["option"]: o["latency_ms"] / 1000 for o in plan["options"]}
    busy = {w["index"]: sum(a["rate_rps"] * latency[a["option"]] for a in w["assignments"] if a["platform"] == "lambda")
            for w in plan["windows"]}
    peak = max(busy.values())

    def edit(p):
        p["limits"]["lambda_concurrency"] = peak / 2
    result = tampered(plan, edit)
    assert result.constraints == {"concurrency-window"}
    assert {v.window for v in result.violations} == {t for t, c in busy.items() if c > peak / 2}


def test_quota_is_caught(plan):
    def edit(p):
        _, a = vm_assignment(p)
        p["limits"]["quotas"] = {a["instance_type"]: 0}
    assert "quota-window" in tampered(plan, edit).constraints


def test_budget_is_caught(plan):
    def edit(p):
        p["limits"]["budget_usd"] = p["summary"]["total_cost_usd"] * 0.9
    assert tampered(plan, edit).constraints == {"budget"}


def test_memory_mismatch_is_caught(plan):
    def edit(p):
        next(o for o in p["options"] if o["platform"] == "vm")["memory_mb"] = 1024
    assert "memory" in tampered(plan, edit).constraints


def test_negative_rate_is_out_of_bounds(plan):
    def edit(p):
        a, b = p["windows"][4]["assignments"][:2]
        b["rate_rps"], a["rate_rps"] = -5.0, a["rate_rps"] + b["rate_rps"] + 5.0
    assert "bounds" in tampered(plan, edit).constraints


def test_unknown_option_is_reported(plan):
    def edit(p):
        p["windows"][2]["assignments"][0]["option"] = "vm:nonesuch@c5.large"
    assert "consistency" in tampered(plan, edit).constraints


def test_violation_reads_well(plan):
    def edit(p):
        p["limits"]["budget_usd"] = 0.01
    text = str(tampered(plan, edit).violations[0])
    assert text.startswith("budget: total cost $") and "0.01" in text


# --- malformed plans are errors, not verdicts ---------------------------------------------------------------

@pytest.mark.parametrize("edit, words", [
    (lambda p: p.pop("windows"), "windows"),
    (lambda p: p.update(schema_version=2), "schema_version"),
    (lambda p: p["windows"][0].pop("demand_rps"), "demand_rps"),
    (lambda p: p["windows"][0]["assignments"][0].pop("rate_rps"), "rate_rps"),
    (lambda p: p["options"][0].pop("accuracy"), "accuracy"),
])
def test_malformed_plan_raises(plan, edit, words):
    p = copy.deepcopy(plan)
    edit(p)
    with pytest.raises(HetplanError, match=words):
        evaluate(p)


def test_not_a_plan_raises():
    with pytest.raises(HetplanError, match="JSON object"):
        evaluate([])
