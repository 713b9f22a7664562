"""Time one seeded GradNorm evaluation (build + score) per architecture on the CPU.

Usage:
    .venv/bin/python bench/gradnorm_speed.py [--repeats 7] [--threads N] [--out PATH]

Reports the median over `--repeats` timed calls after one warm-up call, for the CIFAR search
seed and ZenNet-CIFAR-1M at batch 64, resolution 32, 100 classes. The Zen-NAS reference takes
about 70 ms and 2.5 s on the 2-core development machine (zennas-semantics section 8).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from nasagent.evaluator import CIFAR_SEED, parse
from nasagent.evaluator.proxies import ProxyStatus, ScoreSettings, score

ZENNET_CIFAR_1M = (
    "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
    "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
    "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)"
)
ARCHITECTURES = {"cifar-seed": CIFAR_SEED, "zennet-cifar-1m": ZENNET_CIFAR_1M}
REFERENCE_SECONDS = {"cifar-seed": 0.070, "zennet-cifar-1m": 2.5}


def time_architecture(text: str, settings: ScoreSettings, repeats: int) -> dict[str, object]:
    """Warm up once, then time `repeats` calls of `score`; seconds are wall-clock per call."""
    arch = parse(text)
    warm = score(arch, settings)
    if warm.status is not ProxyStatus.OK:
        raise SystemExit(f"scoring failed: {warm.status}: {warm.message}")
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        score(arch, settings)
        seconds.append(time.perf_counter() - start)
    return {
        "score": warm.score, "median_s": statistics.median(seconds), "min_s": min(seconds),
        "max_s": max(seconds), "runs": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls (at least 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = ScoreSettings(proxy="gradnorm", device="cpu")
    results = {
        name: time_architecture(text, settings, max(5, args.repeats))
        for name, text in ARCHITECTURES.items()
    }
    print(f"{'architecture':<18}{'gradnorm':>12}{'median s':>11}{'min s':>9}{'reference s':>13}")
    for name, row in results.items():
        print(f"{name:<18}{row['score']:>12.5g}{row['median_s']:>11.4f}{row['min_s']:>9.4f}"
              f"{REFERENCE_SECONDS[name]:>13.3f}")
    if args.out:
        _write(args.out, settings, results)


def _write(path: Path, settings: ScoreSettings, results: dict[str, dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "settings": settings.model_dump(mode="json"), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.machine(), "results": results,
    }
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
