"""Zero-cost proxies: seeded reference numbers, registry, and failures returned as results."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from nasagent.evaluator import CIFAR_SEED, parse
from nasagent.evaluator.errors import UnknownNameError
from nasagent.evaluator.proxies import (
    PROXIES,
    DeviceUnavailableError,
    ProxySpec,
    ProxyStatus,
    ScoreSettings,
    get_proxy,
    resolve_device,
    score,
)

SEED_ARCH = parse(CIFAR_SEED)
CPU = {"device": "cpu"}

# Seed-0 values on the CIFAR seed (zennas-semantics sections 8 and 6).
REFERENCE_SEED_0 = {
    "zen": (15.45, 0.01),
    "synflow": (161.4, 0.1),
    "naswot": (83.7, 0.05),
    "params": (94_761.0, 0.0),
    "flops": (6_318_080.0, 0.0),
}


def settings(**changes: object) -> ScoreSettings:
    return ScoreSettings.model_validate({**CPU, **changes})


@pytest.mark.parametrize(("seed", "expected"), [(0, 6.4110), (1, 5.5954)])
def test_seeded_gradnorm_reproduces_the_reference(seed: int, expected: float) -> None:
    result = score(SEED_ARCH, settings(seed=seed))

    assert result.status is ProxyStatus.OK
    assert result.score == pytest.approx(expected, abs=2e-3)
    assert result.seed == seed and result.proxy == "gradnorm" and result.higher_is_better


@pytest.mark.parametrize("proxy", list(PROXIES))
def test_every_proxy_is_finite_on_the_cifar_seed(proxy: str) -> None:
    # NASWOT at batch 8, as the Zen-NAS script runs it.
    batch = 8 if proxy == "naswot" else 64
    result = score(SEED_ARCH, settings(proxy=proxy, batch_size=batch))

    assert result.status is ProxyStatus.OK, result.message
    assert result.score is not None and math.isfinite(result.score)
    assert result.seconds >= 0
    if proxy in REFERENCE_SEED_0:
        expected, tolerance = REFERENCE_SEED_0[proxy]
        assert result.score == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize("proxy", ["gradnorm", "zen", "synflow", "naswot"])
def test_same_seed_gives_the_same_score(proxy: str) -> None:
    first = score(SEED_ARCH, settings(proxy=proxy, batch_size=8, seed=3))
    second = score(SEED_ARCH, settings(proxy=proxy, batch_size=8, seed=3))
    other = score(SEED_ARCH, settings(proxy=proxy, batch_size=8, seed=4))

    assert first.score == second.score
    assert first.score != other.score


def test_repeats_are_the_mean_over_consecutive_seeds() -> None:
    single = [score(SEED_ARCH, settings(seed=s)).score for s in (0, 1)]
    mean = score(SEED_ARCH, settings(seed=0, repeats=2))

    assert mean.seed == 0
    assert mean.score == pytest.approx((single[0] + single[1]) / 2, rel=1e-9)


def test_scoring_leaves_the_callers_random_stream_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    score(SEED_ARCH, settings(batch_size=8))

    assert torch.equal(torch.rand(3), expected)


def test_a_network_collapsing_to_1x1_with_batch_1_is_an_error_result() -> None:
    # BatchNorm in train mode cannot normalise one value per channel: the reference would
    # record -9999 here; we return a result that says what happened.
    collapsing = parse("SuperConvK3BNRELU(3,8,2,1)SuperConvK3BNRELU(8,8,2,1)")
    result = score(collapsing, settings(batch_size=1, resolution=4))

    assert result.status is ProxyStatus.ERROR
    assert result.score is None
    assert "ValueError" in result.message and "channel" in result.message


def test_synflow_errors_on_a_1x1_feature_map_as_in_zen_nas() -> None:
    result = score(parse("SuperConvK3BNRELU(3,8,2,1)"), settings(proxy="synflow", resolution=2))

    assert result.status is ProxyStatus.ERROR and result.score is None


def test_an_unbuildable_architecture_is_invalid_not_a_crash() -> None:
    result = score(parse("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(16,16,1,8,1)"), settings())

    assert result.status is ProxyStatus.INVALID
    assert result.score is None and "block 1" in result.message


def test_non_finite_values_become_a_nonfinite_result() -> None:
    PROXIES.register("nan", ProxySpec("nan", True, "always NaN", lambda run: math.nan))
    try:
        result = score(SEED_ARCH, settings(proxy="nan"))
    finally:
        PROXIES.unregister("nan")

    assert result.status is ProxyStatus.NONFINITE
    assert result.score is None and "nan" in result.message


def test_unknown_proxy_raises_an_error_listing_the_names() -> None:
    with pytest.raises(UnknownNameError, match="gradnorm") as caught:
        get_proxy("gradflow")
    assert set(caught.value.valid) == set(PROXIES)
    with pytest.raises(UnknownNameError):
        score(SEED_ARCH, settings(proxy="gradflow"))


def test_registry_holds_the_eight_proxies_with_directions_and_descriptions() -> None:
    assert set(PROXIES) == {"gradnorm", "zen", "synflow", "naswot", "snip", "params", "flops",
                            "combined"}
    assert not get_proxy("synflow").higher_is_better  # Zen-NAS prefers smaller synflow
    assert all(spec.higher_is_better for name, spec in PROXIES.items() if name != "synflow")
    assert all(len(spec.description) > 80 for spec in PROXIES.values())


def test_settings_are_strict_and_have_a_stable_cache_key() -> None:
    base = ScoreSettings()

    assert base.cache_key() == ScoreSettings().cache_key()
    assert base.cache_key() != ScoreSettings(seed=1).cache_key()
    assert '"residual":false' in base.cache_key()
    with pytest.raises(ValidationError):
        ScoreSettings.model_validate({"proxy": "zen", "gamma": 0.1})
    with pytest.raises(ValidationError):
        ScoreSettings(batch_size=0)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected_auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected_auto
    with pytest.raises(UnknownNameError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError):
            resolve_device("cuda")
