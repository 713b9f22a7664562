"""`nasagent correlate`: sampling spread over sizes, rank correlations with bootstrap intervals,
outputs, and resuming from the cached study directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from image_data import write_imagefolder
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (registers every command)
import nasagent.evaluator.training as training
from nasagent.agent.cli.app import app
from nasagent.agent.correlate import (
    CI_RULE,
    StudyError,
    StudySettings,
    analyse,
    interval_text,
    kendall_tau,
    rank_correlation,
    render_html,
    resolve_study_settings,
    result_lines,
    sample_architectures,
    spearman_rho,
)
from nasagent.evaluator import parse
from nasagent.evaluator.validation import check

SMALL_SEED = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"


def test_sampling_gives_distinct_valid_architectures_of_many_sizes() -> None:
    settings = StudySettings(archs=12, seed=1)
    constraints = settings.constraints(num_classes=10)
    archs = sample_architectures(settings, constraints)
    assert len(set(archs)) == 12
    reports = [check(parse(arch), constraints) for arch in archs]
    assert all(report.valid for report in reports)
    params = [report.cost.params for report in reports if report.cost]
    assert params == sorted(params)  # one per stratum, smallest first
    assert params[-1] > 3 * params[0]
    assert sample_architectures(settings, constraints) == archs  # seeded


def test_sampling_under_a_structure_keeps_the_skeleton() -> None:
    settings = StudySettings(archs=6, structure="zennas")
    constraints = settings.constraints(num_classes=10)
    assert all(check(parse(a), constraints).valid for a in sample_architectures(settings,
                                                                                constraints))


def test_budgets_the_seed_breaks_are_explained() -> None:
    settings = StudySettings(archs=5, max_params=5e4)
    with pytest.raises(StudyError, match="seed architecture is invalid here: params"):
        sample_architectures(settings, settings.constraints(num_classes=100))


def test_asking_for_more_architectures_than_the_budgets_allow_is_explained() -> None:
    settings = StudySettings(archs=40, seed_arch=SMALL_SEED, max_params=3090, max_layers=3)
    with pytest.raises(StudyError, match="found only"):
        sample_architectures(settings, settings.constraints(num_classes=10))


def test_the_vectorised_statistics_equal_scipys_with_ties() -> None:
    from scipy.stats import kendalltau, spearmanr

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, size=20).astype(float), rng.normal(size=20)
    assert float(kendall_tau(x, y)) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
    assert float(spearman_rho(x, y)) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    stacked = kendall_tau(np.stack([x, x]), np.stack([y, -y]))
    assert stacked[0] == pytest.approx(-stacked[1])


def test_rank_correlation_has_an_interval_around_its_value() -> None:
    x = [float(i) for i in range(12)]
    y = [v + (1.5 if i % 3 == 0 else -0.5) for i, v in enumerate(x)]  # mostly monotone
    result = rank_correlation(x, y, kendall_tau, seed=0)
    low, high = result["ci"]
    assert 0.5 < result["value"] <= 1 and low <= result["value"] <= high <= 1
    negated = rank_correlation([-v for v in x], y, kendall_tau, seed=0)
    assert negated["value"] == pytest.approx(-result["value"])


def test_rank_correlation_is_stable_under_tiny_perturbations() -> None:
    x = [0.1 * i for i in range(10)]
    y = [0.3, 0.1, 0.5, 0.4, 0.6, 0.55, 0.8, 0.7, 0.9, 0.95]
    base = rank_correlation(x, y, kendall_tau, seed=0)["value"]
    nudged = rank_correlation([v * (1 + 1e-6) for v in x], y, kendall_tau, seed=0)["value"]
    assert nudged == pytest.approx(base, abs=1e-9)


def test_a_constant_variable_gives_no_value_and_says_why() -> None:
    result = rank_correlation([1.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5], kendall_tau, seed=0)
    assert result["value"] is None and "constant" in result["reason"]
    assert result["ci_reason"] == result["reason"]


def test_a_missing_interval_says_which_rule_left_it_out() -> None:
    # 4 pairs: 4 of every 256 resamples repeat one pair, so some of 1000 have no tau
    result = rank_correlation([1.0, 2.0, 3.0, 4.0], [0.1, 0.3, 0.2, 0.4], kendall_tau, seed=0)
    assert result["value"] == pytest.approx(2 / 3) and result["ci"] is None
    undefined = int(result["ci_reason"].split()[0])
    assert 0 < undefined < 1000 and "of 1000 bootstrap resamples" in result["ci_reason"]
    assert interval_text(result) == f"0.667 [no interval: {result['ci_reason']}]"
    assert "all 1000 bootstrap resamples" in CI_RULE
    full = rank_correlation([float(i) for i in range(12)], [float(i % 5) for i in range(12)],
                            kendall_tau, seed=0)
    assert full["ci"] is not None and full["ci_reason"] is None


def test_bootstrap_batches_bound_memory_and_keep_the_same_resamples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nasagent.agent.correlate as correlate

    rng = np.random.default_rng(1)
    x, y = list(rng.normal(size=60)), list(rng.normal(size=60))
    whole = rank_correlation(x, y, kendall_tau, seed=0)
    seen: list[int] = []

    def counted(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        seen.append(a.size // 60)
        return kendall_tau(a, b, axis)

    monkeypatch.setattr(correlate, "MAX_BOOTSTRAP_ELEMENTS", 60 * 60 * 7)
    batched = rank_correlation(x, y, counted, seed=0)
    assert batched == whole and max(seen) == 7


def test_the_terminal_and_the_page_state_the_interval_rule(tmp_path: Path) -> None:
    settings = StudySettings(archs=4, proxies=("zen",))
    results = analyse([], settings)
    x, y = [1.0, 2.0, 3.0, 4.0], [0.1, 0.3, 0.2, 0.4]
    results["proxies"] = [{
        "proxy": "zen", "higher_is_better": True, "n": 4, "failed": 0,
        "kendall_tau": rank_correlation(x, y, kendall_tau, seed=0),
        "spearman_rho": rank_correlation(x, y, spearman_rho, seed=0),
    }]
    lines = result_lines(results)
    assert lines[0].startswith("      zen: tau 0.667 [no interval: ") and "(n=4)" in lines[0]
    assert lines[1] == f"95% intervals: {CI_RULE}"
    page = render_html(results, [], [], tmp_path)
    assert "0.667 [no interval: " in page and CI_RULE in page


def study_args(images: Path, out: Path) -> list[str]:
    return ["correlate", "--out", str(out), "--archs", "3", "--epochs", "1",
            "--data", f"imagefolder:{images}", "--resolution", "8", "--proxies", "params,zen",
            "--seed-arch", SMALL_SEED, "--max-params", "2e5", "--max-layers", "8",
            "--batch-size", "8", "--score-batch-size", "4", "--device", "cpu"]


def test_the_study_writes_its_report_and_resumes_without_retraining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, out = write_imagefolder(tmp_path / "images"), tmp_path / "study"
    result = CliRunner().invoke(app, study_args(images, out))
    assert result.exit_code == 0, result.output
    results = json.loads((out / "correlation.json").read_text())
    assert [p["proxy"] for p in results["proxies"]] == ["params", "zen"]
    assert results["trained"] == 3 and all(p["n"] == 3 for p in results["proxies"])
    html = (out / "correlate.html").read_text()
    assert "Kendall tau" in html and "data:image/png;base64," in html
    # 3 pairs: no intervals, and the JSON and the page say why
    assert all(p[key]["ci"] is None and p[key]["ci_reason"] for p in results["proxies"]
               for key in ("kendall_tau", "spearman_rho"))
    assert results["ci_rule"] == CI_RULE and CI_RULE in html
    assert "http://" not in html and "https://" not in html
    assert (out / "scatter_zen.png").exists() and (out / "archs" / "002" / "metrics.json").exists()

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached architecture was trained again")

    monkeypatch.setattr(training, "train", no_training)
    again = CliRunner().invoke(app, ["correlate", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "correlation.json").read_text())["proxies"] == results["proxies"]


def test_a_rerun_with_other_settings_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({
        "settings": StudySettings(archs=3).model_dump(mode="json"), "num_classes": 10,
        "architectures": ["a", "b", "c"],
    }))
    with pytest.raises(StudyError, match="epochs differ"):
        resolve_study_settings(out, {"epochs": 9})
    assert resolve_study_settings(out, {"archs": 3}).archs == 3


def test_an_unknown_proxy_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["correlate", "--out", str(tmp_path / "s"),
                                      "--proxies", "zen,magic"])
    assert result.exit_code == 2 and "magic" in result.output
    assert "Traceback" not in result.output
