"""Pre-activation ResNet-200 (He et al., "Identity Mappings in Deep Residual Networks", 2016),
laid out like OSMR's Gluon ``preresnet200b``: bottleneck units [3, 24, 36, 3], the stride on the
3x3 convolution ("b"), BN-ReLU before each convolution, a 1x1 projection of the pre-activated
input where the shape changes, and a final BN-ReLU: 64,666,280 parameters.
"""

from __future__ import annotations

from mxnet.gluon import HybridBlock, nn


class _PreActBottleneck(HybridBlock):
    def __init__(self, mid: int, channels: int, strides: int, project: bool, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.bn1 = nn.BatchNorm()
            self.conv1 = nn.Conv2D(mid, 1, use_bias=False)
            self.bn2 = nn.BatchNorm()
            self.conv2 = nn.Conv2D(mid, 3, strides, 1, use_bias=False)
            self.bn3 = nn.BatchNorm()
            self.conv3 = nn.Conv2D(channels, 1, use_bias=False)
            self.project = nn.Conv2D(channels, 1, strides, use_bias=False) if project else None

    def hybrid_forward(self, F, x):
        pre = F.relu(self.bn1(x))
        # the projection sees the pre-activated input, as in the pre-activation paper
        shortcut = self.project(pre) if self.project is not None else x
        y = self.conv1(pre)
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return y + shortcut


class PreResNet(HybridBlock):
    def __init__(self, layers=(3, 24, 36, 3), classes: int = 1000, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            f = self.features
            f.add(nn.Conv2D(64, 7, 2, 3, use_bias=False), nn.BatchNorm(), nn.Activation("relu"),
                  nn.MaxPool2D(3, 2, 1))
            for stage, count in enumerate(layers):
                channels = 256 * 2 ** stage
                for unit in range(count):
                    strides = 2 if stage > 0 and unit == 0 else 1
                    f.add(_PreActBottleneck(channels // 4, channels, strides, project=unit == 0))
            f.add(nn.BatchNorm(), nn.Activation("relu"), nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def preresnet200b(**kwargs) -> PreResNet:
    return PreResNet((3, 24, 36, 3), **kwargs)
