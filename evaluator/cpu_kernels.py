"""Which CPU kernels torch scores with: AVX2 on every x86-64 machine, unless told otherwise.

On an x86-64 CPU with AVX-512, torch's oneDNN convolutions and ATen's vectorised kernels use
AVX-512 code paths whose sums run in another order than the AVX2 ones. Deep networks amplify
the difference: GradNorm of the shipped transcripts' networks moved by a median 1.3e-3 and up
to 31% relative between the two (`bench/cpu_kernels.py`), and scoring with AVX2 took 0.81x
the time on an AVX-512 AMD EPYC (bench/results/cpu_kernels.json). So nasagent pins both
libraries to AVX2 before torch runs its first operation, and new runs score bit-identically on
every x86-64 machine with AVX2 (same torch build and thread count; the number of threads moves
scores in the 7th digit).

Both libraries read their setting once, at the first operation that needs it, so the pin
works when it comes after `import torch` but not after torch has computed anything in the
process; `in_use()` tells what the process really runs. `NASAGENT_CPU_KERNELS=native` (or an
explicit DNNL_MAX_CPU_ISA / ATEN_CPU_CAPABILITY) leaves the choice to torch.
"""

from __future__ import annotations

import logging
import os
import platform
import sys

from nasagent.evaluator.errors import NasAgentError

logger = logging.getLogger(__name__)

SWITCH = "NASAGENT_CPU_KERNELS"
"""`avx2` (default) pins the kernels; `native` lets torch pick the widest the CPU has."""
PINNED = "avx2"
NATIVE = "native"
PINNED_ENV = {"DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
"""oneDNN's and ATen's settings for AVX2 kernels (both cap, never raise, the ISA used)."""
X86_64 = ("x86_64", "amd64")


class KernelChoiceError(NasAgentError, ValueError):
    """NASAGENT_CPU_KERNELS holds neither `avx2` nor `native`."""


def requested() -> str:
    """The kernel choice asked for: `avx2` (the default) or `native`.

    Raises:
        KernelChoiceError: the environment variable holds another value.
    """
    value = os.environ.get(SWITCH, PINNED).strip().lower()
    if value not in (PINNED, NATIVE):
        raise KernelChoiceError(f"{SWITCH}={value!r}: use {PINNED} (the default) or {NATIVE}")
    return value


def pin() -> None:
    """Ask for AVX2 kernels in this process (x86-64 only; settings already given are kept).

    Call before torch runs its first operation; afterwards it changes nothing.
    """
    if requested() == NATIVE or platform.machine().lower() not in X86_64:
        return
    for name, value in PINNED_ENV.items():
        os.environ.setdefault(name, value)


def describe() -> dict[str, str]:
    """What this process scores with, for run records: the choice, oneDNN's ISA cap, the
    machine, and ATen's CPU capability when torch is already loaded (never imports torch)."""
    record = {
        "requested": requested(),
        "onednn_max_isa": os.environ.get("DNNL_MAX_CPU_ISA", NATIVE),
        "machine": platform.machine(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        record["aten_cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
        record["torch"] = str(torch.__version__)
    return record
