"""Seconds per training epoch on the bundled digits data, to size `nasagent correlate` runs.

Usage:
    .venv/bin/python bench/train_speed.py [--resolution 16 32] [--epochs 2] [--threads N]

Trains the CIFAR search seed and ZenNet-CIFAR-1M (the two ends of the 1M-parameter budget) on
`digits` (1437 training images) with the default recipe, and prints the mean seconds per
epoch (training plus the held-out evaluation) for each resolution, and what a 30-architecture
study would take at 3 epochs if the sampled sizes average the two.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from nasagent.evaluator import CIFAR_SEED, parse
from nasagent.evaluator.datasets import load_data
from nasagent.evaluator.training import Recipe, train

ZENNET_CIFAR_1M = (
    "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
    "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
    "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)"
)
ARCHITECTURES = {"cifar-seed": CIFAR_SEED, "zennet-cifar-1m": ZENNET_CIFAR_1M}
STUDY_ARCHS, STUDY_EPOCHS = 30, 3


def seconds_per_epoch(arch: str, resolution: int, epochs: int) -> float:
    data = load_data("digits", resolution)
    with tempfile.TemporaryDirectory() as out:
        result = train(parse(arch), data, Recipe(epochs=epochs, device="cpu"), Path(out),
                       progress=False)
    return float(result.seconds_per_epoch or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for resolution in args.resolution:
        times = {name: seconds_per_epoch(arch, resolution, args.epochs)
                 for name, arch in ARCHITECTURES.items()}
        mean = sum(times.values()) / len(times)
        rows.append({"resolution": resolution, "seconds_per_epoch": times,
                     "study_estimate_s": round(mean * STUDY_ARCHS * STUDY_EPOCHS, 1)})
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "threads": torch.get_num_threads(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
