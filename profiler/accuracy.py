"""Top-1/top-5 accuracy of a network on a labelled image set: a folder with one sub-folder per class
(classes numbered in sorted folder-name order, as ImageNet's synset folders are) or a ``.rec`` file.

Images get the standard ImageNet evaluation transform: shorter side resized to input/0.875, centre
crop, per-channel mean/std normalization.
"""

from __future__ import annotations

from pathlib import Path

from hetplan.errors import HetplanError

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def preprocess(image, input_size: int):
    """An HWC uint8 image (mx.nd) -> CHW float32 normalized crop of ``input_size``."""
    import mxnet as mx

    image = mx.image.resize_short(image, int(round(input_size / 0.875)))
    image, _ = mx.image.center_crop(image, (input_size, input_size))
    image = mx.image.color_normalize(image.astype("float32") / 255.0,
                                     mx.nd.array(_MEAN), mx.nd.array(_STD))
    return image.transpose((2, 0, 1))


def open_dataset(path: str | Path):
    """A Gluon dataset of (image, label) for an image folder or a ``.rec`` file."""
    from mxnet.gluon.data.vision import ImageFolderDataset, ImageRecordDataset

    path = Path(path)
    if path.is_dir():
        return ImageFolderDataset(str(path), flag=1)
    if path.suffix == ".rec" and path.exists():
        return ImageRecordDataset(str(path), flag=1)
    raise HetplanError(f"dataset '{path}' is neither an image folder (one sub-folder per class) nor a .rec file")


def top_k_hits(scores, labels, k: int) -> int:
    """How many rows of ``scores`` (n x classes, numpy) rank their label within the top k."""
    import numpy as np

    top = np.argsort(-scores, axis=1)[:, :k]
    return int((top == labels.reshape(-1, 1)).any(axis=1).sum())


def evaluate(net, dataset_path: str | Path, input_size: int, batch: int = 16) -> dict:
    """{'top1': %, 'top5': %, 'images': n}; top-5 is over min(5, classes) guesses."""
    import mxnet as mx
    import numpy as np

    dataset = open_dataset(dataset_path).transform_first(lambda image: preprocess(image, input_size))
    if len(dataset) == 0:
        raise HetplanError(f"dataset '{dataset_path}' holds no images")
    hits1 = hits5 = 0
    for images, labels in mx.gluon.data.DataLoader(dataset, batch_size=batch, shuffle=False):
        scores = net(images).asnumpy()
        labels = labels.asnumpy().astype(np.int64)
        hits1 += top_k_hits(scores, labels, 1)
        hits5 += top_k_hits(scores, labels, min(5, scores.shape[1]))
    return {"top1": 100.0 * hits1 / len(dataset), "top5": 100.0 * hits5 / len(dataset), "images": len(dataset)}
