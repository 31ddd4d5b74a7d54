"""Catalog loaders: the shipped files load and trace to their sources; broken files name file, line and column."""

from pathlib import Path

import pandas as pd
import pytest

from hetplan.planner import catalog
from hetplan.errors import HetplanError
from hetplan.planner.catalog.schema import PROFILE_COLUMNS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_shipped_catalog_loads():
    inst = catalog.load_instances()
    assert {"c5.large", "m6i.4xlarge", "t3.2xlarge", "g4dn.xlarge", "p3.2xlarge"} <= set(inst.index)
    assert inst.loc["c5.large", "price_per_hour_usd"] == 0.085 and inst.loc["c5.large", "vcpus"] == 2
    assert inst.loc["g4dn.xlarge", "gpu"] == "T4"
    lam = catalog.load_serverless()
    assert lam.mb_per_vcpu == 1769 and lam.max_vcpus == 6 and lam.concurrency_limit == 1000
    models = catalog.load_models()
    assert {"caffenet", "googlenet", "squeezenet", "resnet18", "resnet200", "resnext50"} <= set(models.index)
    profile = catalog.load_profile()
    assert tuple(profile.columns) == PROFILE_COLUMNS and set(profile.method) == {"reference"}


@pytest.mark.skipif(not (SHARED / "reference_profile_aws.csv").exists(), reason="shared/data is not beside the repo")
def test_reference_profile_matches_its_source():
    source = pd.read_csv(SHARED / "reference_profile_aws.csv")
    shipped = catalog.load_profile()
    assert len(source) == len(shipped)
    source_lat = source.latency_ms.to_numpy()
    shipped_lat = shipped.latency_p50_ms.to_numpy()
    assert ((source_lat == shipped_lat) | (pd.isna(source_lat) & pd.isna(shipped_lat))).all()


def test_lambda_cost_per_request():
    lam = catalog.load_serverless()
    # PRICES.md: 0.20 $/M requests + duration × GB × 0.0000166667; 100 ms at 1024 MB.
    assert lam.cost_per_request(100, 1024) == pytest.approx(2e-7 + 0.1 * 1.0 * 0.0000166667)
    assert lam.cost_per_request(99.2, 1024) == lam.cost_per_request(100, 1024)  # billed per started ms
    assert lam.vcpus_at(1769) == pytest.approx(1.0) and lam.vcpus_at(10240) == pytest.approx(10240 / 1769)
    assert lam.vcpus_at(20000) == 6  # the cap


def _broken(tmp_path, source: Path, edit) -> Path:
    lines = source.read_text().splitlines()
    lines = edit(lines)
    out = tmp_path / source.name
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize("edit, expected", [
    (lambda l: [l[0]] + [l[1].replace("0.085", "-0.085")] + l[2:], "line 2, column 'price_per_hour_usd': must be positive"),
    (lambda l: [l[0]] + [l[1].replace("0.085", "cheap")] + l[2:], "line 2, column 'price_per_hour_usd': must be a number"),
    (lambda l: [l[0].replace("vcpus", "cpus")] + l[1:], "lacks column(s) vcpus"),
    (lambda l: l + [l[1]], "duplicate instance type"),
    (lambda l: [l[0]] + [l[1].replace(",true", ",maybe")] + l[2:], "column 'price_verified': must be true or false"),
    (lambda l: [l[0]], "has no rows"),
])
def test_broken_instance_catalog(tmp_path, edit, expected):
    path = _broken(tmp_path, catalog.DEFAULT_INSTANCES, edit)
    with pytest.raises(HetplanError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        catalog.load_instances(path)
    assert str(path) in str(err.value)


def test_broken_profile_names_row_and_column(tmp_path):
    path = _broken(tmp_path, catalog.DEFAULT_PROFILE, lambda l: l[:5] + [l[5].replace(",vm,", ",gpu,")] + l[6:])
    with pytest.raises(HetplanError, match="line 6, column 'platform': must be one of vm, lambda"):
        catalog.load_profile(path)


def test_missing_file_and_unknown_architecture(tmp_path):
    with pytest.raises(HetplanError, match="does not exist"):
        catalog.load_models(tmp_path / "nope.csv")
    with pytest.raises(HetplanError, match="did you mean 'arm64'"):
        catalog.load_serverless(None, "arm46")


def test_accuracy_over_100_is_rejected(tmp_path):
    path = _broken(tmp_path, catalog.DEFAULT_MODELS, lambda l: [l[0]] + [l[1].replace(",54.5,", ",154.5,")] + l[2:])
    with pytest.raises(HetplanError, match="percentage above 100"):
        catalog.load_models(path)
