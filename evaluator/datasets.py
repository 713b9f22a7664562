"""Image classification data for training: CIFAR-10/100, an image folder, scikit-learn digits.

A data spec names a registered dataset and, for the ones read from disk, a folder:
`cifar10:DIR`, `cifar100:DIR`, `imagefolder:DIR` or `digits`. Nothing is ever downloaded: a
missing folder is an error that says what to put where.

CIFAR is read from the standard python-pickle batches (`cifar-10-batches-py/`,
`cifar-100-python/`) with a restricted unpickler that only reconstructs numpy arrays and plain
containers; any other object in the file is refused, so a tampered file cannot run code.

Images are held as uint8 tensors (N, 3, H, W) at their stored size; `batches` normalises them
with the training split's channel statistics, resizes them to the training resolution and
applies the seeded augmentation.

`proxy_batch` is what a zero-cost proxy reads from a data spec (`--proxy-data`): one seeded
minibatch of training images with their labels, read without loading the data set (an image
folder reads only the sampled files; CIFAR's training batch files are read and only the
sampled rows kept; the test split is never read).
"""

from __future__ import annotations

import io
import logging
import pickle
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasagent.evaluator.errors import NasAgentError, UnknownNameError

logger = logging.getLogger(__name__)

CIFAR_SIZE = 32
DIGITS_SPLIT_SEED = 0
"""The digits train/val split is fixed, so every training seed sees the same held-out set."""
DIGITS_VAL_FRACTION = 0.2
DIGITS_MAX_VALUE = 16
DEFAULT_RESOLUTION = 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
HELD_OUT_FOLDERS = ("val", "test")
"""An image folder's held-out split: `val/`, or `test/` where there is no `val/`."""
STATS_IMAGES = 1000
"""Training images a proxy batch's channel statistics are estimated from (the batch among
them): within about 0.01 of the whole split's on CIFAR-10, at a small fraction of its reading."""


class DataError(NasAgentError, ValueError):
    """A data spec or dataset that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class ImageData:
    """A train and a held-out split of labelled images.

    Attributes:
        spec: the data spec it was loaded from.
        train_images, val_images: uint8 (N, 3, H, W) at the stored size.
        train_labels, val_labels: int64 (N,) class indices.
        classes: class names, indexed by label.
        resolution: the side of the square images the network sees.
        flip: whether a horizontal flip keeps the label (not for digits).
    """

    spec: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]
    resolution: int
    flip: bool

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, in [0, 1] units."""
        pixels = self.train_images.float().div_(255).transpose(0, 1).reshape(3, -1)
        return pixels.mean(dim=1), pixels.std(dim=1).clamp_min(1e-3)

    def describe(self) -> dict[str, Any]:
        """What a metrics file records about the data."""
        return {
            "spec": self.spec, "train": len(self.train_labels), "val": len(self.val_labels),
            "num_classes": self.num_classes, "resolution": self.resolution,
        }


Loader = Callable[[Path | None, int | None], ImageData]


@dataclass(frozen=True)
class TrainSample:
    """A seeded sample of a training split: uint8 images (N, 3, H, W), labels, class count."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int


Sampler = Callable[[Path | None, int, int, int], TrainSample]
"""(folder, count, seed, resolution): `count` training images drawn uniformly without
replacement with `random.Random(seed)`, reading no more than it must."""


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset kind: whether it needs a folder, how it is loaded, and how a
    seeded sample of its training split is read (for proxy batches)."""

    name: str
    needs_path: bool
    description: str
    load: Loader
    sample: Sampler


def parse_spec(spec: str) -> tuple[DatasetSpec, Path | None]:
    """Split `kind[:DIR]` into the registered dataset and its folder.

    Raises:
        UnknownNameError: the kind is not registered.
        DataError: a folder is missing for a kind that needs one, or given to one that does not.
    """
    kind, sep, rest = spec.partition(":")
    dataset = DATASETS.get(kind)
    if dataset is None:
        raise UnknownNameError("dataset", kind, DATASETS)
    if dataset.needs_path and not rest:
        raise DataError(f"data spec {spec!r}: write {kind}:DIR, the folder holding the files")
    if not dataset.needs_path and sep:
        raise DataError(f"data spec {spec!r}: {kind} takes no folder; write {kind}")
    return dataset, Path(rest).expanduser() if rest else None


def load_data(spec: str, resolution: int | None = None) -> ImageData:
    """Load the dataset of a data spec (see the module docstring).

    Args:
        spec: `cifar10:DIR`, `cifar100:DIR`, `imagefolder:DIR` or `digits`.
        resolution: the training resolution; None keeps CIFAR's 32 and uses 32 for digits and
            image folders.

    Raises:
        DataError: the spec or the files are unusable; the message says what to put where.
        UnknownNameError: an unknown dataset kind.
    """
    if resolution is not None and resolution < 1:
        raise DataError(f"resolution must be positive, got {resolution}")
    dataset, path = parse_spec(spec)
    data = dataset.load(path, resolution)
    logger.info("loaded %s: %d train, %d val images, %d classes", spec,
                len(data.train_labels), len(data.val_labels), data.num_classes)
    return data


# ---- CIFAR: python-pickle batches, restricted unpickling ---------------------------------


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only callables a CIFAR pickle may name: numpy array reconstruction and latin-1 bytes."""
    import codecs
    import importlib

    try:
        multiarray = importlib.import_module("numpy._core.multiarray")  # numpy >= 2
    except ImportError:  # numpy 1.x
        multiarray = importlib.import_module("numpy.core.multiarray")

    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that reconstructs numpy arrays, bytes and plain containers, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _numpy_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a CIFAR batch holds only arrays and lists"
        )


def read_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR batch file as a dict with str keys, read by `RestrictedUnpickler`.

    Raises:
        DataError: the file is missing, not a pickle, or names a forbidden object.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        value = RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path} is not a CIFAR python batch: {error}") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} is not a CIFAR python batch: it holds a {type(value).__name__}")
    return {k.decode("latin-1") if isinstance(k, bytes) else str(k): v for k, v in value.items()}


@dataclass(frozen=True)
class CifarLayout:
    """Where a CIFAR variant keeps its files and which keys hold labels and names."""

    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str


CIFAR10 = CifarLayout(
    "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
    "batches.meta", "labels", "label_names",
)
CIFAR100 = CifarLayout(
    "cifar-100-python", ("train",), "test", "meta", "fine_labels", "fine_label_names",
)


def _cifar_root(path: Path | None, layout: CifarLayout, kind: str) -> Path:
    base = path or Path(".")
    for root in (base / layout.folder, base):
        if all((root / name).is_file() for name in (*layout.train_files, layout.test_file)):
            return root
    files = ", ".join((*layout.train_files, layout.test_file, layout.meta_file))
    raise DataError(
        f"{kind}: no CIFAR python batches under {base}; put the extracted "
        f"{layout.folder}/ folder there (files {files}). nasagent never downloads data."
    )


def _cifar_split(files: list[Path], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for file in files:
        batch = read_pickle(file)
        if "data" not in batch or label_key not in batch:
            raise DataError(f"{file} lacks the 'data' or '{label_key}' entry of a CIFAR batch")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * CIFAR_SIZE * CIFAR_SIZE:
            raise DataError(f"{file}: 'data' must be N x 3072 bytes, got shape {data.shape}")
        images.append(torch.from_numpy(data.reshape(-1, 3, CIFAR_SIZE, CIFAR_SIZE).copy()))
        labels.append(torch.as_tensor(np.asarray(batch[label_key], dtype=np.int64)))
        if len(labels[-1]) != len(images[-1]):
            raise DataError(f"{file}: {len(labels[-1])} labels for {len(images[-1])} images")
    return torch.cat(images), torch.cat(labels)


def _cifar_names(root: Path, layout: CifarLayout, labels: torch.Tensor) -> tuple[str, ...]:
    count = int(labels.max()) + 1 if len(labels) else 0
    meta_path = root / layout.meta_file
    names = read_pickle(meta_path).get(layout.names_key) if meta_path.is_file() else None
    if not isinstance(names, list) or len(names) < count:
        return tuple(str(i) for i in range(count))
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def _load_cifar(layout: CifarLayout, kind: str) -> Loader:
    def load(path: Path | None, resolution: int | None) -> ImageData:
        root = _cifar_root(path, layout, kind)
        train_x, train_y = _cifar_split([root / f for f in layout.train_files], layout.label_key)
        val_x, val_y = _cifar_split([root / layout.test_file], layout.label_key)
        classes = _cifar_names(root, layout, torch.cat([train_y, val_y]))
        _check_labels(kind, classes, train_y, val_y)
        spec = f"{kind}:{path}"
        return ImageData(spec, train_x, train_y, val_x, val_y, classes,
                         resolution or CIFAR_SIZE, flip=True)

    return load


def _check_labels(
    kind: str, classes: tuple[str, ...], *labels: torch.Tensor
) -> None:
    for split in labels:
        if len(split) == 0:
            raise DataError(f"{kind}: a split holds no image")
        if int(split.min()) < 0 or int(split.max()) >= len(classes):
            raise DataError(f"{kind}: labels must lie in 0..{len(classes) - 1}")


# ---- image folder -------------------------------------------------------------------------


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _folder_classes(train: Path) -> tuple[str, ...]:
    classes = tuple(sorted(p.name for p in train.iterdir() if p.is_dir()))
    if not classes:
        raise DataError(f"imagefolder: {train} has no class subfolder (train/<class>/<image>)")
    return classes


def _read_image(path: Path, size: int) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"imagefolder: cannot read image {path}: {error}") from None
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)


def _folder_split(
    root: Path, classes: tuple[str, ...], size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    unknown = sorted({p.name for p in root.iterdir() if p.is_dir()} - set(classes))
    if unknown:
        raise DataError(f"imagefolder: {root} has classes not in train/: {', '.join(unknown)}")
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        for file in _image_files(folder) if folder.is_dir() else []:
            images.append(_read_image(file, size))
            labels.append(label)
    if not images:
        raise DataError(f"imagefolder: {root} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _held_out(root: Path) -> Path | None:
    return next((root / name for name in HELD_OUT_FOLDERS if (root / name).is_dir()), None)


def _load_imagefolder(path: Path | None, resolution: int | None) -> ImageData:
    root = path or Path(".")
    train, val = root / "train", _held_out(root)
    if not train.is_dir() or val is None:
        raise DataError(
            f"imagefolder: {root} must hold train/ and val/ (or test/) folders with one "
            f"subfolder of images per class (train/<class>/<image>, val/<class>/<image>)"
        )
    size = resolution or DEFAULT_RESOLUTION
    classes = _folder_classes(train)
    train_x, train_y = _folder_split(train, classes, size)
    val_x, val_y = _folder_split(val, classes, size)
    return ImageData(f"imagefolder:{path}", train_x, train_y, val_x, val_y, classes, size,
                     flip=True)


def _sample_imagefolder(path: Path | None, count: int, seed: int, resolution: int) -> TrainSample:
    """Lists train/<class>/ and reads only the sampled files, at `resolution`."""
    train = (path or Path(".")) / "train"
    if not train.is_dir():
        raise DataError(f"imagefolder: {path} must hold a train/ folder with one subfolder of "
                        f"images per class (train/<class>/<image>)")
    classes = _folder_classes(train)
    files = [(label, file) for label, name in enumerate(classes)
             for file in _image_files(train / name)]
    if not files:
        raise DataError(f"imagefolder: {train} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    chosen = random.Random(seed).sample(range(len(files)), min(count, len(files)))
    images = torch.stack([_read_image(files[index][1], resolution) for index in chosen])
    labels = torch.tensor([files[index][0] for index in chosen], dtype=torch.int64)
    return TrainSample(images, labels, len(classes))


# ---- scikit-learn digits ------------------------------------------------------------------


def _load_digits(_path: Path | None, resolution: int | None) -> ImageData:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DataError(
            "digits needs scikit-learn: pip install 'nasagent[train]'"
        ) from None
    bunch = load_digits()
    grey = np.rint(np.asarray(bunch.images) * (255 / DIGITS_MAX_VALUE)).astype(np.uint8)
    rgb = np.repeat(grey[:, None, :, :], 3, axis=1)
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_x, val_x, train_y, val_y = train_test_split(
        rgb, labels, test_size=DIGITS_VAL_FRACTION, random_state=DIGITS_SPLIT_SEED,
        stratify=labels,
    )
    classes = tuple(str(name) for name in bunch.target_names)
    return ImageData(
        "digits", torch.from_numpy(train_x), torch.from_numpy(train_y),
        torch.from_numpy(val_x), torch.from_numpy(val_y), classes,
        resolution or DEFAULT_RESOLUTION, flip=False,
    )


def _sample_loaded(load: Loader) -> Sampler:
    """A sampler for a kind that is read whole anyway (digits: 1,797 tiny images)."""

    def sample(path: Path | None, count: int, seed: int, _resolution: int) -> TrainSample:
        data = load(path, None)
        chosen = random.Random(seed).sample(range(len(data.train_labels)),
                                            min(count, len(data.train_labels)))
        index = torch.tensor(chosen, dtype=torch.int64)
        return TrainSample(data.train_images[index], data.train_labels[index], data.num_classes)

    return sample


def _sample_cifar(layout: CifarLayout, kind: str) -> Sampler:
    """Reads the training batch files (never the test file) and keeps the sampled rows."""

    def sample(path: Path | None, count: int, seed: int, _resolution: int) -> TrainSample:
        root = _cifar_root(path, layout, kind)
        parts = [_cifar_split([root / name], layout.label_key) for name in layout.train_files]
        sizes = [len(labels) for _, labels in parts]
        chosen = random.Random(seed).sample(range(sum(sizes)), min(count, sum(sizes)))
        images = torch.cat([images for images, _ in parts])[chosen]
        labels = torch.cat([labels for _, labels in parts])[chosen]
        names = _cifar_names(root, layout, torch.cat([labels for _, labels in parts]))
        return TrainSample(images, labels, len(names))

    return sample


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("cifar10", True, "CIFAR-10 python batches (cifar-10-batches-py/)",
                    _load_cifar(CIFAR10, "cifar10"), _sample_cifar(CIFAR10, "cifar10")),
        DatasetSpec("cifar100", True, "CIFAR-100 python batches (cifar-100-python/)",
                    _load_cifar(CIFAR100, "cifar100"), _sample_cifar(CIFAR100, "cifar100")),
        DatasetSpec("imagefolder", True,
                    "train/ and val/ (or test/) folders of JPEG or PNG images, one subfolder "
                    "per class", _load_imagefolder, _sample_imagefolder),
        DatasetSpec("digits", False, "scikit-learn's bundled 8x8 digits, upsampled",
                    _load_digits, _sample_loaded(_load_digits)),
    )
}
"""The dataset kinds a data spec can name."""


# ---- proxy batches ------------------------------------------------------------------------


def proxy_batch(
    spec: str, batch_size: int, resolution: int, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One seeded minibatch of real training images and labels for a zero-cost proxy.

    `STATS_IMAGES` training images are drawn with `random.Random(seed)` (all of a smaller
    split); the first `batch_size` of them are the batch, normalised with the channel mean
    and std of the whole draw (the training split's statistics, estimated) and resized to
    `resolution`. Kept per process: every scoring of a run reads the same batch.

    Raises:
        DataError: the spec or files are unusable, the split holds fewer than `batch_size`
            images, or the data's classes are not the network's outputs.
        UnknownNameError: an unknown dataset kind.
    """
    images, labels = _proxy_batch(spec, batch_size, resolution, num_classes, seed)
    return images.clone(), labels.clone()


@lru_cache(maxsize=8)
def _proxy_batch(
    spec: str, batch_size: int, resolution: int, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    dataset, path = parse_spec(spec)
    sample = dataset.sample(path, max(batch_size, STATS_IMAGES), seed, resolution)
    if sample.num_classes != num_classes:
        raise DataError(f"proxy data {spec} has {sample.num_classes} classes and the scored "
                        f"network {num_classes} outputs: give data of the task's classes")
    if len(sample.labels) < batch_size:
        raise DataError(f"proxy data {spec} holds {len(sample.labels)} training images, fewer "
                        f"than the proxy batch of {batch_size}")
    pixels = sample.images.float().div_(255)
    channels = pixels.transpose(0, 1).reshape(3, -1)
    mean = channels.mean(dim=1).view(1, 3, 1, 1)
    std = channels.std(dim=1).clamp_min(1e-3).view(1, 3, 1, 1)
    batch = (pixels[:batch_size] - mean) / std
    if batch.shape[-1] != resolution or batch.shape[-2] != resolution:
        batch = F.interpolate(batch, size=(resolution, resolution), mode="bilinear",
                              align_corners=False)
    return batch, sample.labels[:batch_size]


# ---- batches ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batches:
    """Turns uint8 images into normalised, resized (and, for training, augmented) batches."""

    data: ImageData
    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def of(cls, data: ImageData) -> Batches:
        mean, std = data.channel_stats()
        return cls(data, mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float().div_(255) - self.mean) / self.std
        size = self.data.resolution
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x

    def train(
        self, batch_size: int, generator: torch.Generator, augment: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled epoch; a last batch of one image is dropped (BatchNorm needs two)."""
        data = self.data
        order = torch.randperm(len(data.train_labels), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            if len(index) < 2:
                break
            x = self.prepare(data.train_images[index])
            if augment:
                x = augment_batch(x, generator, flip=data.flip)
            yield x, data.train_labels[index]

    def val(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data = self.data
        for start in range(0, len(data.val_labels), batch_size):
            stop = start + batch_size
            yield self.prepare(data.val_images[start:stop]), data.val_labels[start:stop]


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, flip: bool) -> torch.Tensor:
    """Random crop with zero padding of 1/8 of the side, and a horizontal flip when allowed."""
    n, _, height, width = x.shape
    pad = max(1, height // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(height).view(1, height)).view(n, 1, height, 1)
    cols = (dx.view(n, 1) + torch.arange(width).view(1, width)).view(n, 1, 1, width)
    batch = torch.arange(n).view(n, 1, 1, 1)
    channels = torch.arange(x.shape[1]).view(1, -1, 1, 1)
    cropped = padded[batch, channels, rows, cols]
    if flip:
        flipped = torch.rand(n, generator=generator) < 0.5
        cropped[flipped] = cropped[flipped].flip(-1)
    return cropped
