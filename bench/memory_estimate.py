"""Benchmark: the torch-free memory estimate (`SearchSpace.memory`) against what scoring needs.

For each architecture and proxy a fresh process imports torch and nasagent, reads its resident
memory (RSS), scores the architecture once (torch threads fixed) and reads its peak RSS
(VmHWM of /proc/self/status, which starts afresh at exec; `ru_maxrss` would keep the peak of
the process that started it). The need is the peak minus the resident memory before scoring
(torch and nasagent themselves excluded: an idle process holds them whatever it scores). Printed
beside each need: the estimate and its ratio to the need, which must stay above 1 for the
estimate to be an upper bound (README: the memory cap, `max_memory`). The pseudo-proxy
`train` takes one SGD step (momentum, Nesterov) of the training network instead, at the
training batch size (`nasagent train`'s default, 128).

    python -m bench.memory_estimate --threads 1 --out bench/results/memory_estimate.json
    python -m bench.memory_estimate --proxies gradnorm --threads 2 --only ZenNet
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

MB = 2**20
TRAIN = "train"

CASES: tuple[tuple[str, str, str], ...] = (
    ("zennas-cifar", "CIFAR seed",
     "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperResK3K3(16,32,2,16,1)"
     "SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,64,2,32,1)SuperConvK1BNRELU(64,128,1,1)"),
    ("zennas-cifar", "ZenNet-0.5M",
     "SuperConvK3BNRELU(3,64,1,1)SuperResK1K5K1(64,168,1,16,3)SuperResK1K3K1(168,80,2,32,4)"
     "SuperResK1K5K1(80,112,2,16,3)SuperResK1K5K1(112,144,1,24,3)SuperResK1K3K1(144,32,2,40,1)"
     "SuperConvK1BNRELU(32,512,1,1)"),
    ("zennas-cifar", "ZenNet-1M",
     "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
     "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
     "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)"),
    ("zennas-cifar", "ZenNet-2M",
     "SuperConvK3BNRELU(3,32,1,1)SuperResK1K5K1(32,120,1,40,1)SuperResK1K5K1(120,176,2,32,3)"
     "SuperResK1K7K1(176,272,1,24,3)SuperResK1K3K1(272,176,1,56,3)SuperResK1K3K1(176,176,1,64,4)"
     "SuperResK1K5K1(176,216,2,40,2)SuperResK1K3K1(216,72,2,56,2)SuperConvK1BNRELU(72,512,1,1)"),
    ("zennas-cifar", "plain 3x3 chain, 64 wide, 24 deep",
     "SuperConvK3BNRELU(3,64,1,24)SuperConvK1BNRELU(64,128,1,1)"),
    ("zennas-cifar", "parameter-heavy, 512 wide at 4x4",
     "SuperConvK3BNRELU(3,64,2,1)SuperConvK3BNRELU(64,512,2,1)SuperConvK3BNRELU(512,1024,2,6)"
     "SuperConvK1BNRELU(1024,2048,1,1)"),
    ("zennas-imagenet", "ImageNet seed (224)",
     "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
     "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)"
     "SuperConvK1BNRELU(128,2048,1,1)"),
    ("nb201-cifar10", "NB201 index 0",
     "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
     "skip_connect~2|"),
    ("nb201-cifar10", "NB201 largest cell",
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
     "nor_conv_3x3~2|"),
    ("nb201-cifar10", "NB201 all skip",
     "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
     "skip_connect~2|"),
    ("nb201-imagenet16", "NB201 largest cell (16x16)",
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
     "nor_conv_3x3~2|"),
)


def measure(space: str, arch: str, proxy: str, batch_size: int, threads: int) -> dict[str, Any]:
    """In this process: score once and return the need (peak RSS over the RSS before)."""
    import psutil
    import torch

    from nasagent.evaluator import cpu_kernels
    from nasagent.evaluator.proxies import ScoreSettings
    from nasagent.evaluator.spaces import get_space
    from nasagent.evaluator.validation import Constraints

    cpu_kernels.pin()
    torch.set_num_threads(threads)
    settings = ScoreSettings(proxy="gradnorm" if proxy == TRAIN else proxy,
                             batch_size=batch_size, device="cpu", search_space=space,
                             max_memory=None, **_task(space))
    searched = get_space(space)
    parsed = searched.decode(arch).architecture
    estimate = searched.memory(parsed, Constraints(search_space=space), batch_size)
    before = psutil.Process().memory_info().rss
    status, seconds = train_step(searched, parsed, settings) if proxy == TRAIN else (
        _scored(parsed, settings))
    peak = peak_rss()
    return {"status": status, "seconds": seconds,
            "before_mb": before / MB, "need_mb": (peak - before) / MB,
            "estimate_mb": estimate.bytes / MB, "params": estimate.params,
            "activations": estimate.activations}


def peak_rss() -> int:
    """This address space's peak resident bytes since exec (Linux: VmHWM)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark needs Linux")


def _scored(parsed: Any, settings: Any) -> tuple[str, float]:
    from nasagent.evaluator.proxies import score

    result = score(parsed, settings)
    return str(result.status), result.seconds


def train_step(space: Any, parsed: Any, settings: Any) -> tuple[str, float]:
    """One training step of the training network (SGD, momentum, Nesterov), as training runs."""
    import time

    import torch
    import torch.nn.functional as F

    start = time.perf_counter()
    model = space.train_model(parsed, settings.num_classes).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    size = settings.resolution
    images = torch.randn(settings.batch_size, 3, size, size)
    labels = torch.randint(0, settings.num_classes, (settings.batch_size,))
    loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
    loss.backward()
    optimiser.step()
    return "ok", time.perf_counter() - start


def _task(space: str) -> dict[str, int]:
    from nasagent.evaluator.spaces import get_space

    defaults = get_space(space).defaults
    return {"resolution": defaults.resolution, "num_classes": defaults.num_classes}


def run_case(space: str, arch: str, proxy: str, batch_size: int, threads: int) -> dict[str, Any]:
    """`measure` in a fresh process, so that no earlier scoring's peak counts."""
    code = (f"import json, bench.memory_estimate as m; print(json.dumps(m.measure("
            f"{space!r}, {arch!r}, {proxy!r}, {batch_size}, {threads})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", default="gradnorm,zen,synflow,naswot,train")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for space, name, arch in CASES:
        if args.only not in name:
            continue
        for proxy in args.proxies.split(","):
            batch = args.train_batch_size if proxy == TRAIN else args.batch_size
            row = {"space": space, "name": name, "proxy": proxy, "batch_size": batch,
                   **run_case(space, arch, proxy, batch, args.threads)}
            row["ratio"] = row["estimate_mb"] / max(row["need_mb"], 1.0)
            rows.append(row)
            print(f"{name:36} {proxy:8} {batch:4} need {row['need_mb']:6.0f} MB  estimate "
                  f"{row['estimate_mb']:6.0f} MB  x{row['ratio']:.2f}", flush=True)
    ratios = [row["ratio"] for row in rows]
    report = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
              "min_ratio": min(ratios, default=None), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
