"""Tiny datasets written in the real on-disk formats (CIFAR python batches, an image folder).

Images are seeded noise plus a class-dependent brightness, so a network can learn something in
one epoch; nothing is downloaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

TINY_ARCH = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"


def _images(count: int, classes: int, side: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    labels = [i % classes for i in range(count)]
    base = np.array(labels, dtype=float)[:, None, None, None] * (200 / max(1, classes - 1))
    noise = rng.uniform(0, 55, size=(count, 3, side, side))
    return (base + noise).astype(np.uint8), labels


def _dump(path: Path, value: object) -> None:
    # protocol 2 with bytes keys: the layout of the files the CIFAR authors ship
    path.write_bytes(pickle.dumps(value, protocol=2))


def write_cifar10(root: Path, per_batch: int = 8, test: int = 8, classes: int = 10) -> Path:
    """root/cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index in range(1, 6):
        images, labels = _images(per_batch, classes, 32, seed=index)
        _dump(folder / f"data_batch_{index}", {b"data": images.reshape(per_batch, -1),
                                               b"labels": labels, b"batch_label": b"train"})
    images, labels = _images(test, classes, 32, seed=99)
    _dump(folder / "test_batch", {b"data": images.reshape(test, -1), b"labels": labels})
    names = [f"class{i}".encode() for i in range(classes)]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": per_batch})
    return root


def write_cifar100(root: Path, train: int = 20, test: int = 10) -> Path:
    """root/cifar-100-python/ with train, test and meta (fine and coarse labels)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, count, seed in (("train", train, 1), ("test", test, 2)):
        images, labels = _images(count, 100, 32, seed)
        _dump(folder / name, {b"data": images.reshape(count, -1), b"fine_labels": labels,
                              b"coarse_labels": [label // 5 for label in labels]})
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)]})
    return root


def write_imagefolder(
    root: Path, classes: int = 2, per_class: int = 12, val_per_class: int = 4, side: int = 12,
    *, held_out: str = "val", suffix: str = ".png",
) -> Path:
    """root/train/<class>/*.png and root/val/<class>/*.png (or test/, or JPEG files)."""
    for split, count, seed in (("train", per_class, 0), (held_out, val_per_class, 1)):
        images, labels = _images(count * classes, classes, side, seed)
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{index}{suffix}")
    return root
