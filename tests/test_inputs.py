"""One meaning per input: search-space defaults, budgets (0 / "none" = off) and one clear
error for every bad input, with nothing written by a refused start."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nasagent.agent.cli  # noqa: F401  (registers every command on the app)
import nasagent.agent.compare as compare_module
from nasagent.agent.cli.app import app
from nasagent.agent.cli.inputs import constraints_from_flags
from nasagent.agent.config import (
    ConfigError,
    RunConfig,
    config_from_dict,
    dump_config,
    load_config,
    parse_budget,
)
from nasagent.agent.proposers import constraints_for
from nasagent.evaluator import CIFAR_SEED, IMAGENET_SEED, parse
from nasagent.evaluator.spaces import SEARCH_SPACES, get_space
from tests.test_compare import FakeRun

runner = CliRunner()
FAST = ["--llm", "scripted", "--proxy", "params", "--batch-size", "8", "--no-progress"]


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def one_line_error(stderr: str) -> str:
    """The error a refused command printed: exactly one `error:` line, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


# ---- budgets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("off", [0, 0.0, "0", "none", "NONE", " none ", None])
def test_zero_or_none_turns_a_budget_off(off: object) -> None:
    assert parse_budget(off) is None
    assert parse_budget(off, integer=True) is None


@pytest.mark.parametrize("bad", [-1, -0.5, "-3", math.nan, "nan", math.inf, "inf", "lots", True,
                                 [1], "1e6x"])
def test_negative_nan_infinite_or_non_numeric_budgets_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="positive number, or 0 or 'none'"):
        parse_budget(bad)


def test_budgets_parse_numbers_and_whole_layer_counts() -> None:
    assert parse_budget("1e6") == 1e6 and parse_budget(400e6) == 400e6
    assert parse_budget("14", integer=True) == 14 and parse_budget(14.0, integer=True) == 14
    with pytest.raises(ValueError, match="whole number"):
        parse_budget(2.5, integer=True)


@pytest.mark.parametrize("space", list(SEARCH_SPACES))
def test_every_command_reads_the_same_defaults_per_search_space(space: str) -> None:
    config = load_config(None, {"search_space": space})
    defaults = get_space(space).defaults
    assert constraints_from_flags(search_space=space) == constraints_for(config)
    assert (config.seed_arch, config.resolution, config.num_classes) == (
        defaults.seed_arch, defaults.resolution, defaults.num_classes)
    assert (config.max_params, config.max_flops, config.max_layers) == (
        defaults.max_params, defaults.max_flops, defaults.max_layers)


def test_imagenet_brings_the_zennas_imagenet_task() -> None:
    config = load_config(None, {"search_space": "zennas-imagenet"})
    assert config.seed_arch == IMAGENET_SEED
    assert (config.resolution, config.num_classes) == (224, 1000)
    assert (config.max_params, config.max_flops, config.max_layers) == (None, 400e6, 14)
    given = load_config(None, {"search_space": "zennas-imagenet", "max_flops": "600e6",
                               "resolution": 192})
    assert given.max_flops == 600e6 and given.resolution == 192 and given.max_layers == 14
    cifar = RunConfig()
    assert (cifar.seed_arch, cifar.resolution, cifar.num_classes) == (CIFAR_SEED, 32, 100)
    assert (cifar.max_params, cifar.max_flops, cifar.max_layers) == (1e6, None, 18)


@pytest.mark.parametrize("off", [0, "none"])
def test_a_budget_turned_off_in_toml_stays_off_through_config_toml(
    tmp_path: Path, off: object
) -> None:
    path = tmp_path / "c.toml"
    value = f'"{off}"' if isinstance(off, str) else off
    path.write_text(f'search_space = "zennas-imagenet"\nmax_flops = {value}\n')
    config = load_config(path)
    assert config.max_flops is None and config.max_layers == 14
    written = tmp_path / "written.toml"
    written.write_text(dump_config(config))
    assert 'max_flops = "none"' in written.read_text()
    assert load_config(written) == config  # not the space's 400M again


def test_a_dict_with_none_keeps_the_budget_off() -> None:
    values = load_config(None, {"search_space": "zennas-imagenet", "max_flops": 0}).model_dump()
    assert config_from_dict(values).max_flops is None


def test_bad_budget_flags_are_one_line_errors_in_every_command(tmp_path: Path) -> None:
    reply = tmp_path / "reply.txt"
    reply.write_text("[]")
    commands = [
        ["inspect", CIFAR_SEED], ["prompt", CIFAR_SEED],
        ["check-response", str(reply), "--parent", CIFAR_SEED],
        ["search", "--out", str(tmp_path / "run"), *FAST],
        ["compare", "--out", str(tmp_path / "cmp"), *FAST],
    ]
    for command in commands:
        for flag, value in [("--max-params", "-1"), ("--max-flops", "nan"),
                            ("--max-layers", "many")]:
            code, _, err = invoke(*command, flag, value)
            assert code == 2, (command, flag)
            assert flag in one_line_error(err) and "no budget" in err
    assert sorted(tmp_path.iterdir()) == [reply]


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--max-cost", "-1", "or 0 or 'none' for no budget (got '-1')"),
    ("--max-cost", "nan", "or 0 or 'none' for no budget (got 'nan')"),
    ("--max-total-tokens", "-5", "or 0 or 'none' for no budget (got '-5')"),
    ("--max-total-tokens", "nan", "or 0 or 'none' for no budget (got 'nan')"),
    ("--max-total-tokens", "2.5", "must be a whole number (got '2.5')"),
    ("--score-timeout", "-3", "or 0 or 'none' for no limit (got '-3')"),
    ("--score-memory", "nan", "or 0 or 'none' for no limit (got 'nan')"),
])
@pytest.mark.parametrize("command", ["search", "compare"])
def test_bad_spend_budgets_and_limits_are_one_line_errors(
    tmp_path: Path, command: str, flag: str, value: str, expected: str
) -> None:
    out = tmp_path / "out"
    code, _, err = invoke(command, "--out", str(out), *FAST, "--workers", "1", flag, value)
    line = one_line_error(err)
    assert code == 2 and f"{flag}: must be " in line and expected in line
    assert not out.exists()


@pytest.mark.parametrize("off", [0, "0", "none", "NONE", None])
def test_zero_or_none_turns_a_spend_budget_off_in_toml_and_flags(
    tmp_path: Path, off: object
) -> None:
    values = {"max_cost": off, "max_total_tokens": off}
    assert (load_config(None, values).max_cost, load_config(None, values).max_total_tokens) == (
        None, None)
    if off is not None:
        path = tmp_path / "c.toml"
        text = f'"{off}"' if isinstance(off, str) else off
        path.write_text(f"max_cost = {text}\nmax_total_tokens = {text}\n")
        config = load_config(path)
        assert config.max_cost is None and config.max_total_tokens is None
    given = load_config(None, {"max_cost": "2.5", "max_total_tokens": "1e6"})
    assert (given.max_cost, given.max_total_tokens) == (2.5, 1_000_000)


def test_inspect_uses_the_search_space_budgets_and_zero_lifts_them() -> None:
    big = ("SuperConvK3BNRELU(3,32,1,1)SuperResK1K5K1(32,120,1,40,1)"  # ZenNet-2M
           "SuperResK1K5K1(120,176,2,32,3)SuperResK1K7K1(176,272,1,24,3)"
           "SuperResK1K3K1(272,176,1,56,3)SuperConvK1BNRELU(176,512,1,1)")
    code, out, _ = invoke("inspect", big, "--json")
    assert code == 1 and "exceed the budget" in out  # more than 1e6 params: zennas-cifar's
    assert invoke("inspect", big, "--json", "--max-params", "0")[0] == 0
    assert invoke("inspect", big, "--json", "--max-params", "none")[0] == 0
    code, out, _ = invoke("inspect", IMAGENET_SEED, "--json", "--search-space",
                          "zennas-imagenet")
    record = json.loads(out)
    assert code == 0 and record["flops"] == 163_875_008  # counted at 224x224 with 1000 classes


def test_prompt_states_the_imagenet_budgets() -> None:
    code, out, _ = invoke("prompt", IMAGENET_SEED, "--search-space", "zennas-imagenet", "--json")
    system = json.loads(out)[0]["content"]
    assert code == 0 and "400,000,000" in system and "224x224" in system


# ---- search and compare: refused before anything is written --------------------------------


@pytest.mark.parametrize(("flags", "expected"), [
    (["--search-space", "bogus"],
     "unknown search space 'bogus'; valid: all, nb201-cifar10, nb201-cifar100, "
     "nb201-imagenet16, zennas-cifar, zennas-imagenet"),
    (["--proxy", "bogus"], "unknown proxy 'bogus'"),
    (["--llm", "bogus:x"], "unknown LLM backend 'bogus'"),
    (["--llm", "manual:"], "needs a folder"),
    (["--max-params", "1e4"], "seed_arch breaks the budget in force: params 102,572 exceed "
                              "the budget of 10,000"),
    (["--max-layers", "3"], "layers 6 (the sum of sub_layers) exceed the budget of 3"),
    (["--seed-arch", "SuperConvK3BNRELU(3,8"], "seed_arch is not a valid block string"),
    (["--search-space", "zennas-imagenet", "--seed-arch", CIFAR_SEED],
     "seed_arch does not fit search space zennas-imagenet: block 1 SuperResK3K3: SuperResK3K3 "
     "is not in search space zennas-imagenet; use one of SuperConvK1BNRELU, SuperConvK3BNRELU, "),
    (["--search-space", "zennas-imagenet", "--seed-arch", CIFAR_SEED],
     "(it fits zennas-cifar); give a zennas-imagenet seed with --seed-arch, e.g. one from "
     "fixtures/architectures/zennas-imagenet.txt"),
    (["--search-space", "zennas-cifar", "--seed-arch", IMAGENET_SEED],
     "fixtures/architectures/zennas-reference.txt"),
])
@pytest.mark.parametrize("command", ["search", "compare"])
def test_refused_starts_name_the_problem_and_write_nothing(
    tmp_path: Path, command: str, flags: list[str], expected: str
) -> None:
    out = tmp_path / "out"
    code, _, err = invoke(command, "--out", str(out), *FAST, *flags)
    assert code == 2
    assert expected in one_line_error(err)
    assert not out.exists()


def test_unknown_config_key_says_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("max_param = 1e6\n")
    for command in ("search", "compare"):
        code, _, err = invoke(command, "--config", str(path), "--out", str(tmp_path / "o"))
        assert code == 2
        assert "unknown key 'max_param' (did you mean 'max_params'?)" in one_line_error(err)
    with pytest.raises(ConfigError, match="did you mean 'iterations'"):
        config_from_dict({"iteration": 3})
    assert not (tmp_path / "o").exists()


def test_config_naming_a_folder_and_out_naming_a_file(tmp_path: Path) -> None:
    for command in ("search", "compare"):
        code, _, err = invoke(command, "--config", str(tmp_path), *FAST)
        assert code == 2 and "is a folder; give a TOML file" in one_line_error(err)
    afile = tmp_path / "afile"
    afile.write_text("x")
    for command in ("search", "compare"):
        code, _, err = invoke(command, "--out", str(afile), *FAST)
        assert code == 2 and "is a file, not a folder" in one_line_error(err)
    code, _, err = invoke("search", "--resume", str(afile))
    assert code == 2 and "is a file" in one_line_error(err)
    code, _, err = invoke("search", "--resume", str(tmp_path))
    assert code == 2 and "not a run folder" in one_line_error(err)


def test_budget_zero_runs_in_search_and_compare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                ) -> None:
    run = tmp_path / "run"
    code, out, err = invoke("search", "--out", str(run), *FAST, "--iterations", "2",
                            "--max-params", "0", "--max-layers", "none", "--max-cost", "0",
                            "--max-total-tokens", "none")
    assert code == 0, err  # no price needed: there is no cost budget
    assert json.loads(out)["finished"] and f"run folder: {run}" in err
    config = load_config(run / "config.toml")
    assert config.max_params is None and config.max_layers is None
    assert config.max_cost is None and config.max_total_tokens is None
    fake = FakeRun()
    monkeypatch.setattr(compare_module, "_default_run", lambda: fake)
    cmp = tmp_path / "cmp"
    code, _, err = invoke("compare", "--out", str(cmp), "--iterations", "4", "--seeds", "2",
                          "--max-params", "0", "--seed-arch", CIFAR_SEED, "--max-cost", "none",
                          "--max-total-tokens", "0", "--no-progress")
    assert code == 0, err
    stored = compare_module.read_plan(cmp / "compare.toml")
    assert stored.config.max_params is None and stored.config.seed_arch == CIFAR_SEED
    assert stored.config.max_cost is None and stored.config.max_total_tokens is None
    assert len(fake.calls) == 4


def test_compare_takes_the_imagenet_defaults_and_a_seed_arch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compare_module, "_default_run", lambda: FakeRun())
    cmp = tmp_path / "cmp"
    code, _, err = invoke("compare", "--out", str(cmp), "--iterations", "2", "--seeds", "1",
                          "--search-space", "zennas-imagenet", "--no-progress")
    assert code == 0, err
    plan = compare_module.read_plan(cmp / "compare.toml")
    assert plan.config.seed_arch == IMAGENET_SEED and plan.config.max_flops == 400e6
    assert plan.run_config("llm", 0).resolution == 224


def test_resume_with_fewer_iterations_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert invoke("search", "--out", str(run), *FAST, "--iterations", "3")[0] == 0
    before = (run / "config.toml").read_text()
    code, _, err = invoke("search", "--resume", str(run), "--iterations", "2", "--no-progress")
    assert code == 2
    assert "has already run 3 iterations" in one_line_error(err) and "--iterations 3" in err
    assert (run / "config.toml").read_text() == before
    code, _, err = invoke("search", "--resume", str(run), "--iterations", "4", "--no-progress")
    assert code == 0, err and "resuming after iteration 3 of 4" in err


def test_compare_into_a_single_run_folder_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert invoke("search", "--out", str(run), *FAST, "--iterations", "1")[0] == 0
    listing = sorted(p.name for p in run.iterdir())
    code, _, err = invoke("compare", "--out", str(run), *FAST)
    assert code == 2
    assert "holds a single run, not a comparison" in one_line_error(err)
    assert f"nasagent search --resume {run}" in err
    assert sorted(p.name for p in run.iterdir()) == listing


def test_replay_of_dot_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("replay", ".")
    assert code == 2 and "has no events.jsonl: not a run directory" in one_line_error(err)


# ---- architectures given to score, prompt, check-response and mutate ------------------------


BROKEN_CHAIN = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(16,16,1,8,1)"


@pytest.mark.parametrize("arch", [BROKEN_CHAIN, "NotABlock(1)"])
def test_prompt_and_check_response_refuse_an_invalid_parent(tmp_path: Path, arch: str) -> None:
    code, out, err = invoke("prompt", arch)
    assert code == 1 and out == ""
    assert "the parent ARCH is not a valid architecture" in one_line_error(err)
    reply = tmp_path / "reply.txt"
    reply.write_text(f'```json\n{{"arch": "{CIFAR_SEED}"}}\n```')
    code, out, err = invoke("check-response", str(reply), "--parent", arch)
    assert code == 1 and out == ""
    assert "--parent is not a valid architecture" in one_line_error(err)


def test_prompt_refuses_a_parent_from_another_search_space() -> None:
    code, _, err = invoke("prompt", IMAGENET_SEED)
    assert code == 1 and "not in search space zennas-cifar" in one_line_error(err)


def test_score_refuses_an_architecture_that_breaks_a_rule() -> None:
    code, out, _ = invoke("score", BROKEN_CHAIN, "--json", "--proxy", "params")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert row["status"] == "invalid" and row["score"] is None
    assert "in_channels 16 must equal block 0's out_channels 8" in row["message"]


def test_mutate_keeps_children_in_the_parents_search_space() -> None:
    code, out, _ = invoke("mutate", IMAGENET_SEED, "--n", "5", "--seed", "3")
    imagenet = get_space("zennas-imagenet")
    assert code == 0
    assert all(b.op in imagenet for line in out.splitlines() for b in parse(line).blocks)
    code, out, err = invoke("mutate", IMAGENET_SEED, "--search-space", "zennas-cifar")
    assert code == 1 and out == ""
    assert "use --search-space zennas-imagenet" in one_line_error(err)
    assert invoke("mutate", CIFAR_SEED, "--search-space", "all")[0] == 0


# ---- help --------------------------------------------------------------------------------------


def test_search_help_shows_the_defaults() -> None:
    result = CliRunner().invoke(app, ["search", "--help"], env={"COLUMNS": "250"})
    text = " ".join(result.stdout.split())
    assert result.exit_code == 0
    for shown in ("[default: (500)]", "[default: (512)]", "[default: (gradnorm)]",
                  "[default: (openai:gpt-4o)]", "[default: (0.2,0.4,0.6,0.8,1)]",
                  "zennas-cifar 1,000,000, zennas-imagenet none",
                  "zennas-cifar none, zennas-imagenet 400,000,000",
                  "zennas-cifar 18, zennas-imagenet 14", "zennas-cifar 32, zennas-imagenet 224"):
        assert shown in text, shown


@pytest.mark.parametrize(("args", "expected"), [
    (["inspect", CIFAR_SEED, "--counting", "nope"],
     "Invalid value for '--counting': 'nope' is not one of 'exact', 'zennas'"),
    (["mutate", CIFAR_SEED, "--seed", "x"], "Invalid value for '--seed'"),
    (["inspect", CIFAR_SEED, "--bogus"], "No such option: --bogus"),
    (["mutate"], "Missing argument"),
    (["inspect"], "give at least one block string"),
    (["bogus"], "No such command 'bogus'"),
])
def test_a_usage_error_is_the_whole_of_stderr_in_one_line(args: list[str], expected: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: ") and expected in line
    command = " ".join(["nasagent", *args[:1]]) if args[0] != "bogus" else "nasagent"
    assert line.endswith(f"(see '{command} --help')")


def test_no_arguments_show_the_help_and_exit_two() -> None:
    code, out, err = invoke()
    assert code == 2 and "Usage: nasagent" in out + err and "error:" not in out + err
