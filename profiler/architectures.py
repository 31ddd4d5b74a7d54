"""Builders of the networks the profiler measures: the mxnet Gluon zoo, the paper models missing from
it (built here with their published architectures), and user models from a plugin file.

Plugin: set ``HETPLAN_PROFILER_MODELS`` to a Python file defining ``MODELS = {name: (builder, input_size)}``
where ``builder()`` returns an uninitialized Gluon HybridBlock; import mxnet inside the builder so that
listing names stays free of mxnet.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

PLUGIN_ENV = "HETPLAN_PROFILER_MODELS"

# mxnet 1.9.1 gluon.model_zoo.vision.get_model names, listed here so that name checks need no mxnet import.
ZOO_ARCHS = (
    "alexnet", "densenet121", "densenet161", "densenet169", "densenet201", "inceptionv3",
    "mobilenet0.25", "mobilenet0.5", "mobilenet0.75", "mobilenet1.0",
    "mobilenetv2_0.25", "mobilenetv2_0.5", "mobilenetv2_0.75", "mobilenetv2_1.0",
    "resnet101_v1", "resnet101_v2", "resnet152_v1", "resnet152_v2", "resnet18_v1", "resnet18_v2",
    "resnet34_v1", "resnet34_v2", "resnet50_v1", "resnet50_v2", "squeezenet1.0", "squeezenet1.1",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
)
CUSTOM_ARCHS = {"caffenet": 227, "googlenet": 224, "resnext50_32x4d": 224, "preresnet200b": 224}


def _plugin_models() -> dict[str, tuple[Callable, int]]:
    path = os.environ.get(PLUGIN_ENV)
    if not path:
        return {}
    spec = importlib.util.spec_from_file_location("hetplan_profiler_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.MODELS)


def known_architectures() -> dict[str, int]:
    """Architecture name -> input image size (pixels per side)."""
    sizes = {name: (299 if name == "inceptionv3" else 224) for name in ZOO_ARCHS}
    sizes.update(CUSTOM_ARCHS)
    sizes.update({name: size for name, (_, size) in _plugin_models().items()})
    return sizes


def build(arch: str):
    """An uninitialized Gluon HybridBlock for ``arch`` (imports mxnet)."""
    plugins = _plugin_models()
    if arch in plugins:
        return plugins[arch][0]()
    if arch == "caffenet":
        from hetplan.profiler.caffenet import CaffeNet
        return CaffeNet()
    if arch == "googlenet":
        from hetplan.profiler.googlenet import GoogLeNet
        return GoogLeNet()
    if arch == "resnext50_32x4d":
        from hetplan.profiler.resnext import resnext50_32x4d
        return resnext50_32x4d()
    if arch == "preresnet200b":
        from hetplan.profiler.preresnet import preresnet200b
        return preresnet200b()
    from mxnet.gluon.model_zoo import vision
    return vision.get_model(arch)


def count_parameters(net, input_size: int) -> int:
    """Trainable parameters (BatchNorm running statistics excluded, as published counts do).

    Deferred shapes are resolved by one forward pass on a zero image of the model's input size.
    """
    import mxnet as mx

    net.initialize(mx.init.Zero(), force_reinit=True)
    net(mx.nd.zeros((1, 3, input_size, input_size)))
    return sum(p.data().size for p in net.collect_params().values() if p.grad_req != "null")
