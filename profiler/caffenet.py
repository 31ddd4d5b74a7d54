"""CaffeNet (BVLC reference CaffeNet): the AlexNet variant of the Caffe model zoo, 227x227 input.

It differs from Gluon's ``alexnet`` (a one-tower torchvision-style net) by the two-tower grouped
convolutions (conv2, conv4, conv5 have group=2) and LRN after pooling: 60,965,224 parameters.
"""

from __future__ import annotations

from mxnet.gluon import HybridBlock, nn


class _LRN(HybridBlock):
    """Caffe's local response normalization (local_size 5, alpha 1e-4, beta 0.75)."""

    def hybrid_forward(self, F, x):
        return F.LRN(x, nsize=5, alpha=1e-4, beta=0.75, knorm=1.0)


class CaffeNet(HybridBlock):
    def __init__(self, classes: int = 1000, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                self.features.add(
                    nn.Conv2D(96, 11, strides=4, activation="relu"),
                    nn.MaxPool2D(3, 2, ceil_mode=True), _LRN(),
                    nn.Conv2D(256, 5, padding=2, groups=2, activation="relu"),
                    nn.MaxPool2D(3, 2, ceil_mode=True), _LRN(),
                    nn.Conv2D(384, 3, padding=1, activation="relu"),
                    nn.Conv2D(384, 3, padding=1, groups=2, activation="relu"),
                    nn.Conv2D(256, 3, padding=1, groups=2, activation="relu"),
                    nn.MaxPool2D(3, 2, ceil_mode=True),
                    nn.Flatten(),
                    nn.Dense(4096, activation="relu"), nn.Dropout(0.5),
                    nn.Dense(4096, activation="relu"), nn.Dropout(0.5),
                )
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))
