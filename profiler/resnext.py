"""ResNeXt-50 32x4d (Xie et al. 2017): ResNet-50 layout with grouped 3x3 convolutions of 32 groups,
4 channels per group in the first stage (torchvision / GluonCV layout): 25,028,904 parameters.
"""

from __future__ import annotations

from mxnet.gluon import HybridBlock, nn


def _conv_bn(channels: int, kernel: int, strides: int = 1, padding: int = 0, groups: int = 1,
             relu: bool = True) -> nn.HybridSequential:
    block = nn.HybridSequential(prefix="")
    block.add(nn.Conv2D(channels, kernel, strides, padding, groups=groups, use_bias=False), nn.BatchNorm())
    if relu:
        block.add(nn.Activation("relu"))
    return block


class _Bottleneck(HybridBlock):
    def __init__(self, width: int, channels: int, strides: int, groups: int, downsample: bool, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            self.body.add(_conv_bn(width, 1), _conv_bn(width, 3, strides, 1, groups),
                          _conv_bn(channels, 1, relu=False))
            self.downsample = _conv_bn(channels, 1, strides, relu=False) if downsample else None

    def hybrid_forward(self, F, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        return F.relu(self.body(x) + shortcut)


class ResNeXt(HybridBlock):
    def __init__(self, layers=(3, 4, 6, 3), cardinality: int = 32, bottleneck_width: int = 4,
                 classes: int = 1000, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            f = self.features
            f.add(_conv_bn(64, 7, 2, 3), nn.MaxPool2D(3, 2, 1))
            width = cardinality * bottleneck_width
            for stage, count in enumerate(layers):
                channels = 256 * 2 ** stage
                for unit in range(count):
                    strides = 2 if stage > 0 and unit == 0 else 1
                    f.add(_Bottleneck(width * 2 ** stage, channels, strides, cardinality, downsample=unit == 0))
            f.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def resnext50_32x4d(**kwargs) -> ResNeXt:
    return ResNeXt((3, 4, 6, 3), 32, 4, **kwargs)
