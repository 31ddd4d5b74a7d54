"""Every buildable network has the parameter count its published architecture has.

Builds networks (one forward pass on zeros to resolve deferred shapes), runs no timed inference.
"""

from __future__ import annotations

import pytest

from hetplan.profiler.architectures import build, count_parameters, known_architectures
from hetplan.profiler.catalog import read_catalog

# Counts for the architectures built in hetplan/profiler, independent of data/models.csv:
# CaffeNet from the layer sizes of BVLC's deploy.prototxt (grouped conv2/4/5); the others from
# data/models.csv's sources (torchvision GoogLeNet and ResNeXt-50 32x4d, OSMR preresnet200b).
CUSTOM_COUNTS = {
    "caffenet": 60_965_224,
    "googlenet": 6_624_904,
    "resnext50_32x4d": 25_028_904,
    "preresnet200b": 64_666_280,
}

# mxnet's Gluon zoo BottleneckV1 keeps a bias on both 1x1 convolutions of every unit, which the
# published (OSMR/torchvision) ResNet v1 counts do not have: blocks x (width + 4 x width) per stage.
_BOTTLENECK_V1_UNITS = {"resnet50_v1": (3, 4, 6, 3), "resnet101_v1": (3, 4, 23, 3), "resnet152_v1": (3, 8, 36, 3)}


def zoo_bias_extra(arch: str) -> int:
    units = _BOTTLENECK_V1_UNITS.get(arch, ())
    return sum(count * (64 * 2**stage + 256 * 2**stage) for stage, count in enumerate(units))


CATALOG = read_catalog()
PUBLISHED = sorted((spec.name, spec.arch, spec.params) for spec in CATALOG.values()
                   if spec.params is not None and spec.arch in known_architectures())


@pytest.mark.parametrize("arch, expected", sorted(CUSTOM_COUNTS.items()))
def test_custom_architectures_have_published_counts(arch, expected):
    assert count_parameters(build(arch), known_architectures()[arch]) == expected


@pytest.mark.parametrize("name, arch, expected", PUBLISHED, ids=[name for name, _, _ in PUBLISHED])
def test_catalog_parameter_counts(name, arch, expected):
    assert count_parameters(build(arch), CATALOG[name].input_size) == expected + zoo_bias_extra(arch)


def test_catalog_checks_the_paper_models():
    # the parametrized test above must cover the paper models whose count is published
    assert {"googlenet", "squeezenet", "resnet18", "resnet200", "resnext50"} <= {name for name, _, _ in PUBLISHED}


def test_caffenet_takes_227_pixel_input():
    import mxnet as mx

    net = build("caffenet")
    net.initialize()
    assert net(mx.nd.zeros((2, 3, 227, 227))).shape == (2, 1000)
