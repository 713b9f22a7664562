"""Data specs: CIFAR python batches (read by a restricted unpickler), image folders and digits,
all on tiny files the tests write in the real formats; nothing is downloaded."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from image_data import write_cifar10, write_cifar100, write_imagefolder

from nasagent.evaluator.datasets import (
    Batches,
    DataError,
    augment_batch,
    load_data,
    read_pickle,
)
from nasagent.evaluator.errors import UnknownNameError


def test_cifar10_batches_are_read_with_their_class_names(tmp_path: Path) -> None:
    data = load_data(f"cifar10:{write_cifar10(tmp_path)}")
    assert data.train_images.shape == (40, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert data.val_images.shape == (8, 3, 32, 32)
    assert data.classes[:2] == ("class0", "class1") and data.num_classes == 10
    assert data.resolution == 32 and data.flip


def test_cifar10_also_accepts_the_batches_folder_itself(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    data = load_data(f"cifar10:{tmp_path / 'cifar-10-batches-py'}")
    assert len(data.train_labels) == 40


def test_cifar100_uses_the_fine_labels(tmp_path: Path) -> None:
    data = load_data(f"cifar100:{write_cifar100(tmp_path)}")
    assert data.num_classes == 100 and data.classes[3] == "f3"
    assert data.train_labels.tolist()[:3] == [0, 1, 2]


def test_a_missing_cifar_folder_says_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar-100-python/ folder there") as error:
        load_data(f"cifar100:{tmp_path}")
    assert "never downloads" in str(error.value)


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo should-never-run",))


def test_the_unpickler_refuses_anything_but_arrays(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Payload()}, protocol=2))
    with pytest.raises(DataError, match="refusing to load"):
        read_pickle(path)


def test_a_file_that_is_not_a_pickle_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "test_batch"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="not a CIFAR python batch"):
        read_pickle(path)


def test_an_image_folder_is_resized_to_the_resolution(tmp_path: Path) -> None:
    data = load_data(f"imagefolder:{write_imagefolder(tmp_path, classes=3)}", resolution=8)
    assert data.classes == ("c0", "c1", "c2")
    assert data.train_images.shape == (36, 3, 8, 8) and data.val_images.shape == (12, 3, 8, 8)
    assert sorted(set(data.val_labels.tolist())) == [0, 1, 2]


def test_an_image_folder_without_val_is_explained(tmp_path: Path) -> None:
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match=r"train/ and val/"):
        load_data(f"imagefolder:{tmp_path}")


def test_digits_has_a_fixed_stratified_split() -> None:
    first, second = load_data("digits", 16), load_data("digits")
    assert first.num_classes == 10 and first.resolution == 16 and second.resolution == 32
    assert len(first.train_labels) + len(first.val_labels) == 1797
    assert torch.equal(first.val_labels, second.val_labels)
    assert not first.flip  # a mirrored digit is another symbol


@pytest.mark.parametrize("spec, error, match", [
    ("cifar10", DataError, "cifar10:DIR"),
    ("digits:/tmp", DataError, "takes no folder"),
    ("mnist:/data", UnknownNameError, "cifar10, cifar100, digits, imagefolder"),
])
def test_bad_specs_are_one_clear_error(spec: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        load_data(spec)


def test_batches_are_normalised_resized_and_augmented_reproducibly(tmp_path: Path) -> None:
    data = load_data(f"imagefolder:{write_imagefolder(tmp_path)}", resolution=12)
    data = data.__class__(**{**data.__dict__, "resolution": 16})
    batches = Batches.of(data)
    x = batches.prepare(data.train_images)
    assert x.shape[-2:] == (16, 16)
    assert abs(float(batches.prepare(data.train_images[:, :, :, :]).mean())) < 0.5
    one = augment_batch(x, torch.Generator().manual_seed(1), flip=True)
    two = augment_batch(x, torch.Generator().manual_seed(1), flip=True)
    assert torch.equal(one, two) and one.shape == x.shape
    sizes = [len(y) for _, y in batches.train(10, torch.Generator().manual_seed(0), True)]
    assert sizes == [10, 10, 4]
