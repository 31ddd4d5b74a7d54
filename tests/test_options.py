"""Profile → options: the capacity rule, extrapolation, latency basis, queueing and pruning."""

import numpy as np
import pandas as pd
import pytest

from hetplan.planner import catalog
from hetplan.planner.optimize.options import Targets, build_options, extrapolate_family, latency_for, prune_dominated
from hetplan.planner.optimize.queueing import erlang_c, latency_quantile, max_utilization


@pytest.fixture(scope="module")
def reference():
    return catalog.load_profile(), catalog.load_instances(), catalog.load_serverless(), catalog.load_models()


def test_extrapolation_rule_reproduces_the_measured_caffenet_slots(reference):
    profile, instances, _, _ = reference
    only_large = profile[~((profile.platform == "vm") & (profile.instance_type != "c5.large"))]
    derived = extrapolate_family(only_large, instances)
    measured = profile[(profile.platform == "vm") & (profile.batch == 1) & (profile.model == "caffenet")]
    for itype in ("c5.xlarge", "c5.2xlarge"):
        row = derived[(derived.model == "caffenet") & (derived.instance_type == itype) & (derived.batch == 1)].iloc[0]
        assert row.concurrency == measured[measured.instance_type == itype].concurrency.iloc[0]  # 6 and 12
        assert row.method == "scaled" and "c5.large" in row.source
    # Only upward within a family, never to another family or to a measured size.
    assert set(derived.instance_type) == {"c5.xlarge", "c5.2xlarge", "c5.4xlarge"}


def test_capacity_never_exceeds_what_the_cpus_sustain(reference):
    options = build_options(*reference, Targets(slo_s=0.2))
    vm = options.vm.set_index("option")
    instances = reference[1]
    for option, row in vm.iterrows():
        assert row.capacity_rps <= instances.loc[row.instance_type, "vcpus"] * 1000 / row.latency_ms + 1e-9
    # Busy latency: squeezenet on c5.2xlarge is served at c5.large's 20 ms per request, not its idle 10 ms.
    assert vm.loc["vm:squeezenet@c5.2xlarge", "latency_ms"] == 20.0
    assert vm.loc["vm:squeezenet@c5.2xlarge", "throughput_rps"] == pytest.approx(8 * 1000 / 20)
    assert vm.loc["vm:squeezenet@c5.4xlarge", "method"] == "scaled"


def test_latency_basis_falls_back_to_lower_percentiles():
    rows = pd.DataFrame({"latency_p50_ms": [10.0, 10.0, np.nan], "latency_p90_ms": [np.nan, 20.0, np.nan],
                         "latency_p99_ms": [np.nan, 30.0, 50.0]})
    latency, basis = latency_for(rows, 0.99)
    assert list(latency) == [10.0, 30.0, 50.0] and list(basis) == ["p50", "p99", "p99"]
    latency, basis = latency_for(rows, 0.90)
    assert list(latency[:2]) == [10.0, 20.0] and np.isnan(latency[2])


def test_queueing_model():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = ρ
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # Idle servers answer in the service time; latency grows with utilization and crosses the SLO once.
    assert latency_quantile(0.02, 2, 0.01, 0.99) == pytest.approx(0.02)
    assert latency_quantile(0.02, 2, 0.9, 0.99) > latency_quantile(0.02, 2, 0.5, 0.99)
    rho = max_utilization(0.1, 1, 0.2, 0.99)
    assert 0 < rho < 0.95
    assert latency_quantile(0.1, 1, rho, 0.99) <= 0.2 + 1e-9 < latency_quantile(0.1, 1, rho + 0.01, 0.99)
    assert max_utilization(0.3, 4, 0.2, 0.99) == 0.0  # slower than the SLO even when idle


def test_slo_and_accuracy_filters_explain_rejections(reference):
    options = build_options(*reference, Targets(slo_s=0.2, min_accuracy=0.72))
    assert set(options.vm.model) | set(options.lam.model) == {"inception_bn"}
    reasons = options.rejected.groupby("model").reason.agg(set)
    assert "accuracy below --min-accuracy" in reasons["squeezenet"]
    assert "latency above the SLO" in reasons["resnet200"]


def test_pruning_removes_dominated_and_twin_options(reference):
    options = prune_dominated(build_options(*reference, Targets(slo_s=0.2)))
    dominated = options.pruned.set_index("option").dominated_by
    # caffenet is less accurate and slower than squeezenet on the same VMs.
    assert dominated["vm:caffenet@c5.large"].startswith("vm:squeezenet@")
    # Two c5.2xlarge serve what one c5.4xlarge does, at the same price: the twin goes.
    assert dominated["vm:squeezenet@c5.4xlarge"] == "vm:squeezenet@c5.2xlarge"
    assert not options.vm.option.isin(dominated.index).any()
