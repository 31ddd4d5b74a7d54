"""GoogLeNet (Inception v1, Szegedy et al. 2015) with batch-normalized convolutions, as in GluonCV and
torchvision (no auxiliary heads at inference): 6,624,904 trainable parameters.

Like those implementations, the "5x5" branch uses a 3x3 kernel; the published parameter count and
the pretrained weights depend on it.
"""

from __future__ import annotations

from mxnet.gluon import HybridBlock, nn


def _conv(channels: int, kernel: int, strides: int = 1, padding: int = 0) -> nn.HybridSequential:
    block = nn.HybridSequential(prefix="")
    block.add(nn.Conv2D(channels, kernel, strides, padding, use_bias=False),
              nn.BatchNorm(epsilon=0.001), nn.Activation("relu"))
    return block


class _Inception(HybridBlock):
    def __init__(self, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.b1 = _conv(c1, 1)
            self.b2 = nn.HybridSequential(prefix="")
            self.b2.add(_conv(c3r, 1), _conv(c3, 3, padding=1))
            self.b3 = nn.HybridSequential(prefix="")
            self.b3.add(_conv(c5r, 1), _conv(c5, 3, padding=1))
            self.b4 = nn.HybridSequential(prefix="")
            self.b4.add(nn.MaxPool2D(3, 1, 1, ceil_mode=True), _conv(pool_proj, 1))

    def hybrid_forward(self, F, x):
        return F.concat(self.b1(x), self.b2(x), self.b3(x), self.b4(x), dim=1)


# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) per inception module, from Table 1 of the paper.
_STAGE3 = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64)]
_STAGE4 = [(192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
           (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)]
_STAGE5 = [(256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]


class GoogLeNet(HybridBlock):
    def __init__(self, classes: int = 1000, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            f = self.features
            f.add(_conv(64, 7, 2, 3), nn.MaxPool2D(3, 2, ceil_mode=True),
                  _conv(64, 1), _conv(192, 3, padding=1), nn.MaxPool2D(3, 2, ceil_mode=True))
            for i, stage in enumerate((_STAGE3, _STAGE4, _STAGE5)):
                for spec in stage:
                    f.add(_Inception(*spec))
                if i < 2:
                    f.add(nn.MaxPool2D(3, 2, ceil_mode=True))
            f.add(nn.GlobalAvgPool2D(), nn.Flatten(), nn.Dropout(0.2))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))
