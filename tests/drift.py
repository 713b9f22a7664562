"""Another CPU, simulated: every proxy result of this process multiplied by (1 + r).

A machine of ours with AVX-512 kernels rescores deep networks' GradNorm up to 31% away from
one with AVX2; with one CPU to test on, drift is injected instead of measured.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import nasagent.evaluator.proxies as proxies
from nasagent.evaluator.proxies import ScoreResult


def perturb_proxy(monkeypatch: pytest.MonkeyPatch, relative: float) -> list[str]:
    """Make every proxy result (1 + relative) times the true one; returns the archs scored.

    In-process scoring (the default, workers 0) looks `score` up at call time.
    """
    real: Callable[..., ScoreResult] = proxies.score
    scored: list[str] = []

    def perturbed(architecture: object, settings: object) -> ScoreResult:
        result = real(architecture, settings)
        scored.append(str(architecture))
        if result.score is None:
            return result
        return result.model_copy(update={"score": result.score * (1 + relative)})

    monkeypatch.setattr(proxies, "score", perturbed)
    return scored
