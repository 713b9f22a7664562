"""The proxies on NB201 networks as the literature computes them there, real proxy data read
from a few files, and the combined proxy's normalisation fixed per run."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from image_data import write_cifar10, write_imagefolder
from torch import nn
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (registers every command)
import nasagent.evaluator.datasets as datasets
from nasagent.agent.cli.app import app
from nasagent.agent.config import config_from_dict
from nasagent.agent.prompting import PromptSettings, SearchFacts, mutation_messages
from nasagent.agent.runlog import read_events
from nasagent.agent.search import run_search
from nasagent.evaluator import CIFAR_SEED
from nasagent.evaluator.combined import (
    MemberStatistics,
    Normalisation,
    combine,
    normalised,
)
from nasagent.evaluator.datasets import DataError, load_data, proxy_batch
from nasagent.evaluator.proxies import (
    PROXIES,
    ProxyStatus,
    ScoreSettings,
    higher_is_better,
    inputs_used,
    prepare_settings,
    score,
)
from nasagent.evaluator.spaces import get_space
from nasagent.evaluator.spaces.nb201.builder import build_network
from nasagent.evaluator.spaces.nb201.cell import decode
from nasagent.evaluator.validation import Constraints

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|"
NB201 = {"search_space": "nb201-cifar10", "num_classes": 10, "resolution": 8, "batch_size": 4,
         "device": "cpu", "seed": 3}


def nb201(**changes: object) -> ScoreSettings:
    return ScoreSettings.model_validate({**NB201, **changes})


def weighted(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def seeded_network(seed: int, *, batchnorm: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    return build_network(decode(CELL).cell, 10, batchnorm=batchnorm).train()


# ---- the literature's protocols -----------------------------------------------------------


@pytest.mark.parametrize("proxy", list(PROXIES))
def test_every_proxy_scores_an_nb201_network(proxy: str) -> None:
    result = score(CELL, nb201(proxy=proxy))

    assert result.status is ProxyStatus.OK, result.message
    assert result.score is not None and math.isfinite(result.score)


def test_gradnorm_on_nb201_is_zero_cost_nas_grad_norm_at_the_default_init() -> None:
    model = seeded_network(3)
    images, labels = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    F.cross_entropy(model(images), labels).backward()
    expected = sum(float(layer.weight.grad.norm()) for layer in weighted(model))

    assert score(CELL, nb201()).score == pytest.approx(expected, rel=1e-5)


def test_snip_on_nb201_is_the_summed_weight_times_gradient_saliency() -> None:
    model = seeded_network(3)
    images, labels = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    F.cross_entropy(model(images), labels).backward()
    expected = sum(float((layer.weight.detach() * layer.weight.grad).abs().sum())
                   for layer in weighted(model))

    assert score(CELL, nb201(proxy="snip")).score == pytest.approx(expected, rel=1e-5)


def synflow_by_hand(batchnorm: bool) -> float:
    model = seeded_network(3, batchnorm=batchnorm)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    model.double()
    model(torch.ones(1, 3, 8, 8, dtype=torch.float64)).sum().backward()
    return sum(float((layer.weight.detach() * layer.weight.grad).abs().sum())
               for layer in weighted(model))


def test_synflow_on_nb201_is_zero_cost_nas_summed_without_batchnorm_and_higher_is_better() -> None:
    result = score(CELL, nb201(proxy="synflow"))

    assert result.score == pytest.approx(synflow_by_hand(batchnorm=False), rel=1e-9)
    assert result.score != pytest.approx(synflow_by_hand(batchnorm=True), rel=1e-3)
    assert result.higher_is_better and higher_is_better("synflow", "nb201-cifar10")
    assert not higher_is_better("synflow", "zennas-cifar")  # Zen-NAS: lower is better
    assert not score(CIFAR_SEED, ScoreSettings(proxy="synflow", device="cpu")).higher_is_better


def test_zen_on_nb201_keeps_zen_nas_gaussian_init_and_the_others_pytorchs() -> None:
    space = get_space("nb201-cifar10")
    arch = decode(CELL).cell
    torch.manual_seed(0)
    zen_model = space.scoring_model(arch, nb201(proxy="zen"))
    torch.manual_seed(0)
    default_model = space.scoring_model(arch, nb201(proxy="gradnorm"))

    def weight_std(model: nn.Module) -> float:
        weights = [layer.weight.detach().flatten() for layer in weighted(model)]
        return float(torch.cat(weights).std())

    assert weight_std(zen_model) == pytest.approx(1.0, abs=0.05)
    assert weight_std(default_model) < 0.3
    assert space.proxy_protocol("zen").init == "gaussian"
    assert space.proxy_protocol("naswot").init == "default"


def test_snip_is_a_proxy_of_the_zen_nas_spaces_too() -> None:
    result = score(CIFAR_SEED, ScoreSettings(proxy="snip", batch_size=8, device="cpu"))

    assert result.status is ProxyStatus.OK and result.score is not None and result.score > 0


# ---- real proxy data ------------------------------------------------------------------------


@pytest.fixture()
def jpeg_folder(tmp_path: Path) -> Path:
    """10 classes x 3 JPEG training images, a test/ split and no val/."""
    return write_imagefolder(tmp_path / "images", classes=10, per_class=3, val_per_class=1,
                             side=8, held_out="test", suffix=".jpg")


def test_the_proxy_batch_reads_only_the_sampled_files(
    jpeg_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[Path] = []
    original = datasets._read_image

    def counting(path: Path, size: int) -> torch.Tensor:
        read.append(path)
        return original(path, size)

    monkeypatch.setattr(datasets, "_read_image", counting)
    monkeypatch.setattr(datasets, "STATS_IMAGES", 6)
    datasets._proxy_batch.cache_clear()
    images, labels = proxy_batch(f"imagefolder:{jpeg_folder}", 4, 8, 10, seed=5)

    files = sorted((jpeg_folder / "train").glob("*/*.jpg"), key=lambda p: (p.parent.name, p.name))
    chosen = [files[i] for i in random.Random(5).sample(range(len(files)), 6)]
    assert read == chosen and all(path.parent.parent.name == "train" for path in read)
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.float32
    assert labels.tolist() == [int(path.parent.name[1:]) for path in chosen[:4]]
    datasets._proxy_batch.cache_clear()


def test_a_cifar_proxy_batch_never_reads_the_test_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_cifar10(tmp_path / "cifar")
    read: list[str] = []
    original = datasets.read_pickle

    def recording(path: Path) -> dict[str, object]:
        read.append(path.name)
        return original(path)

    monkeypatch.setattr(datasets, "read_pickle", recording)
    datasets._proxy_batch.cache_clear()
    images, labels = proxy_batch(f"cifar10:{root}", 16, 32, 10, seed=0)

    assert images.shape == (16, 3, 32, 32) and labels.shape == (16,)
    assert "test_batch" not in read and "data_batch_1" in read
    channel_means = images.mean(dim=(0, 2, 3))  # normalised with the sample's statistics
    assert channel_means.abs().max() < 0.5
    datasets._proxy_batch.cache_clear()


def test_the_zen_nas_spaces_read_proxy_data_only_when_given() -> None:
    plain = ScoreSettings(num_classes=10, batch_size=8, device="cpu")
    real = plain.model_copy(update={"proxy_data": "digits"})

    assert score(CIFAR_SEED, real).score != score(CIFAR_SEED, plain).score
    assert inputs_used(real) == "real:digits" and inputs_used(plain) == "gaussian"


def test_an_image_folder_with_a_test_split_loads_for_training(jpeg_folder: Path) -> None:
    data = load_data(f"imagefolder:{jpeg_folder}", 8)

    assert len(data.train_labels) == 30 and len(data.val_labels) == 10


def test_real_data_changes_the_data_dependent_proxies_and_every_record_says_so(
    jpeg_folder: Path,
) -> None:
    spec = f"imagefolder:{jpeg_folder}"
    for proxy in ("gradnorm", "snip", "naswot"):
        gaussian, real = score(CELL, nb201(proxy=proxy)), score(CELL, nb201(proxy=proxy,
                                                                            proxy_data=spec))
        assert real.status is ProxyStatus.OK and real.score != gaussian.score
        assert inputs_used(nb201(proxy=proxy, proxy_data=spec)) == f"real:{spec}"
    for proxy, inputs in (("zen", "gaussian"), ("synflow", "ones"), ("params", "none")):
        assert score(CELL, nb201(proxy=proxy, proxy_data=spec)).score == score(
            CELL, nb201(proxy=proxy)).score
        assert inputs_used(nb201(proxy=proxy, proxy_data=spec)) == inputs


def test_score_json_names_the_inputs(jpeg_folder: Path) -> None:
    args = ["score", CELL, "--search-space", "nb201-cifar10", "--resolution", "8",
            "--batch-size", "4", "--device", "cpu", "--json"]
    plain = CliRunner().invoke(app, args)
    real = CliRunner().invoke(app, [*args, "--proxy-data", f"imagefolder:{jpeg_folder}"])

    assert plain.exit_code == 0 and real.exit_code == 0, real.output
    assert json.loads(plain.stdout)["inputs"] == "gaussian"
    assert json.loads(real.stdout)["inputs"] == f"real:imagefolder:{jpeg_folder}"


def test_proxy_data_of_other_classes_is_one_line_before_scoring(tmp_path: Path) -> None:
    folder = write_imagefolder(tmp_path / "two", classes=2, side=8)
    with pytest.raises(DataError, match="2 classes"):
        prepare_settings(nb201(proxy_data=f"imagefolder:{folder}"))
    result = CliRunner().invoke(app, ["score", CELL, "--search-space", "nb201-cifar10",
                                      "--proxy-data", f"imagefolder:{folder}"])
    assert result.exit_code == 2 and "2 classes" in result.output
    assert "Traceback" not in result.output


def test_the_nb201_prompt_states_the_direction_and_the_data_of_the_run() -> None:
    def system(proxy: str, space: str, data: str | None) -> str:
        settings = PromptSettings(constraints=Constraints(search_space=space), proxy=proxy,
                                  search=SearchFacts(proxy_data=data), version=3)
        return mutation_messages(get_space(space).defaults.seed_arch, None,
                                 settings)[0]["content"]

    assert "Higher synflow scores are better" in system("synflow", "nb201-cifar10", None)
    assert "Lower synflow scores are better" in system("synflow", "zennas-cifar", None)
    assert "real training images" in system("gradnorm", "nb201-cifar10", "cifar10:/d")
    assert "random Gaussian images with random labels" in system("gradnorm", "nb201-cifar10",
                                                                 None)
    assert "real training images" not in system("zen", "nb201-cifar10", "cifar10:/d")


# ---- correlate against the table ----------------------------------------------------------


def test_correlate_against_the_benchmark_reads_the_tables_accuracies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "study"
    args = ["correlate", "--out", str(out), "--search-space", "nb201-cifar10", "--archs", "5",
            "--proxies", "params", "--truth", "benchmark", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    table = get_space("nb201-cifar10").benchmark()
    records = [json.loads(p.read_text()) for p in sorted((out / "archs").glob("*.json"))]
    assert len({record["arch"] for record in records}) == 5
    for record in records:
        accuracy = table.lookup(record["arch"])
        assert record["truth"]["test_accuracy"] == accuracy.test_accuracy
        assert record["truth"]["index"] == accuracy.index
        assert record["top1"] == pytest.approx(accuracy.test_accuracy / 100)
    results = json.loads((out / "correlation.json").read_text())
    assert results["truth"]["kind"] == "benchmark" and "NATS-Bench" in results["truth"]["source"]
    assert results["settings"]["seed_arch"] == get_space("nb201-cifar10").defaults.seed_arch
    assert results["settings"]["max_layers"] is None and results["proxies"][0]["n"] == 5
    assert results["common"]["n"] == 5
    assert results["common"]["spearman_rho"]["params"] == results["proxies"][0][
        "spearman_rho"]["value"]
    assert "benchmark test accuracy" in (out / "correlate.html").read_text()

    import nasagent.agent.correlate as correlate

    def no_scoring(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached architecture was scored again")

    monkeypatch.setattr(correlate, "score", no_scoring)
    again = CliRunner().invoke(app, ["correlate", "--out", str(out)])
    assert again.exit_code == 0, again.output


def test_a_space_without_a_table_cannot_be_correlated_against_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["correlate", "--out", str(tmp_path / "s"), "--archs", "3",
                                      "--truth", "benchmark"])
    assert result.exit_code == 2 and "benchmark table" in result.output


# ---- the combined proxy ---------------------------------------------------------------------


def statistics(proxy: str, mean: float, std: float, log: bool, higher: bool = True
               ) -> MemberStatistics:
    return MemberStatistics(proxy=proxy, higher_is_better=higher, log_scale=log, mean=mean,
                            std=std, finite=4)


def test_combine_is_the_mean_of_signed_z_scores_after_the_logs() -> None:
    norm = Normalisation(seed=0, archs=("a", "b", "c"), members=(
        statistics("synflow", 2.0, 0.5, log=True), statistics("naswot", 10.0, 4.0, log=False),
        statistics("x", 1.0, 2.0, log=False, higher=False),
    ))
    value = combine({"synflow": math.e ** 3, "naswot": 2.0, "x": 5.0}, norm)

    assert value == pytest.approx((2.0 - 2.0 - 2.0) / 3)
    assert not math.isfinite(combine({"synflow": 0.0, "naswot": 2.0, "x": 5.0}, norm))


def test_a_carried_normalisation_is_used_as_it_is() -> None:
    fixed = Normalisation(seed=9, archs=(CELL,), members=(
        statistics("params", 0.0, 1.0, log=True), statistics("flops", 0.0, 1.0, log=True)))
    settings = nb201(proxy="combined", combination={"members": ("params", "flops"),
                                                    "normalisation": fixed})
    params, flops = (score(CELL, nb201(proxy=p)).score for p in ("params", "flops"))

    assert normalised(settings) is settings
    assert score(CELL, settings).score == pytest.approx((math.log(params) + math.log(flops)) / 2)


def test_the_combined_normalisation_is_fixed_for_a_run_and_recorded(tmp_path: Path) -> None:
    values = {"search_space": "nb201-cifar10", "mutator": "random", "proxy": "combined",
              "iterations": 3, "batch_size": 4, "resolution": 8, "num_classes": 10,
              "device": "cpu", "combined_reference": 4}
    first = run_search(config_from_dict(values), tmp_path / "a", progress=False)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    combination = summary["combination"]
    norm = Normalisation.model_validate(combination["normalisation"])
    assert first.finished and len(norm.archs) == 4
    assert [m.proxy for m in norm.members] == list(combination["members"])

    settings = nb201(seed=0)
    events = [e for e in read_events(tmp_path / "a") if e.score is not None]
    assert len(events) >= 2
    for event in events:  # each score is the same affine map of its members' scores
        members = {m.proxy: score(event.arch, settings.of(m.proxy)).score for m in norm.members}
        assert event.score == pytest.approx(combine(members, norm), rel=1e-9)

    run_search(config_from_dict(values), tmp_path / "b", progress=False)
    again = json.loads((tmp_path / "b" / "summary.json").read_text())["combination"]
    assert again["normalisation"] == combination["normalisation"]  # seeded, not data-driven
