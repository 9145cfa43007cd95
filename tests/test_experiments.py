"""The study's settings, its experiments as data, and the helpers that word results.

The library's defaults (:mod:`crowdnb.config`) and the notebooks' parameter
cells (literals, for papermill) must agree; the experiments registry must name
the stages and folders the notebooks write; the book's sentences come from the
numbers they are given.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from crowdnb.config import PreprocessConfig, TrainRecipe
from crowdnb.errors import DataError, ParameterError
from crowdnb.experiments import (EXPERIMENTS, experiment_numbers, metrics_path, results_table,
                                 split_for)
from crowdnb.workflow.stages import discover_stages

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


# ---------------------------------------------------------------------------
# One home for every setting


def _notebook_defaults():
    for stage in discover_stages(NOTEBOOKS):
        for param in stage.parameters.values():
            yield stage.name, param.name, ast.literal_eval(param.default)


def test_notebook_parameter_defaults_are_the_library_defaults():
    flat = PreprocessConfig().flat()
    recipe = TrainRecipe().to_dict()
    checked = set()
    for stage, name, value in _notebook_defaults():
        if name in flat:
            expected = flat[name]
        elif name in recipe:
            # papermill needs a literal: 0 stands for None ("all of them")
            expected = recipe[name] if recipe[name] is not None else 0
        else:
            continue
        assert value == expected, f"{stage}: {name} = {value!r}, the library's default is {expected!r}"
        checked.add(name)
    # the notebooks expose the paper's settings, not a subset that drifted away
    assert {"sr", "block_s", "hop_s", "target_lufs", "frame_hop_s", "db_low", "db_high",
            "n_colors", "colormap", "epochs", "batch_size", "lr", "weight_decay",
            "new_layer_lr_factor", "momentum", "validate_every"} <= checked


def test_preprocess_config_round_trips_and_names_bad_settings():
    config = PreprocessConfig.from_flat(sr=22050, frame_hop_s=0.01, db_low=-120.0, colormap="viridis")
    assert config.audio.sr == 22050 and config.spectrogram.frame_hop_s == 0.01
    assert config.image.db_range == (-120.0, -22.0)
    assert PreprocessConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert PreprocessConfig.from_flat(**config.flat()) == config
    with pytest.raises(ParameterError, match="db_lo"):
        PreprocessConfig.from_flat(db_lo=-120.0)
    with pytest.raises(ParameterError, match="db_high .* must be above db_low"):
        PreprocessConfig.from_flat(db_low=-20.0)
    with pytest.raises(ParameterError, match="checkpoint: ImageConfig has no setting.*gamma"):
        PreprocessConfig.from_dict({"image": {"gamma": 2}}, where="checkpoint")
    with pytest.raises(ParameterError, match="sr must be an integer"):
        PreprocessConfig.from_flat(sr=True)


@pytest.mark.parametrize("change, message", [
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"momentum": 1.0}, "momentum must be <= 0.999"),
    ({"drop_last": "yes"}, "drop_last must be true or false"),
    ({"validation_blocks": 2.5}, "validation_blocks must be an integer"),
])
def test_train_recipe_rejects_values_out_of_range(change, message):
    with pytest.raises(ParameterError, match=message):
        TrainRecipe(**change)


# ---------------------------------------------------------------------------
# The experiments as data


def test_every_experiment_is_run_by_its_chapter():
    stages = {s.name: s for s in discover_stages(NOTEBOOKS)}
    for experiment in EXPERIMENTS.values():
        assert experiment.stage in stages, experiment.key
        nb = nbformat.read(stages[experiment.stage].path, as_version=4)
        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert f'EXPERIMENTS["{experiment.key}"]' in source, experiment.key
        assert experiment.protocol in ("random", "random_guard", "clip") and experiment.task in ("emotions", "football")


def _blocks(n_clips=6, per_clip=5):
    import pandas as pd

    rows = [{"block_id": f"{label}{c}_b{i}", "clip_id": f"{label}{c}", "event_id": f"{label}{c}",
             "label": label, "start_s": float(i), "end_s": float(i) + 2.0, "image_path": "x.png"}
            for label in ("joy", "anger") for c in range(n_clips // 2) for i in range(per_clip)]
    return pd.DataFrame(rows)


def test_split_for_follows_the_experiments_protocol():
    blocks = _blocks()
    train, test = split_for(EXPERIMENTS["emotions_clip"], blocks, test_fraction=0.34, seed=0)
    assert not set(train["clip_id"]) & set(test["clip_id"])
    train, test = split_for(EXPERIMENTS["emotions_random"], blocks, test_fraction=0.2, seed=0)
    assert set(train["clip_id"]) & set(test["clip_id"])
    assert len(train) + len(test) == len(blocks)
    with pytest.raises(ParameterError, match="test_clips applies to the clip split only"):
        split_for(EXPERIMENTS["emotions_random"], blocks, test_fraction=0.2, seed=0,
                  test_clips=["joy0"])


def test_the_guard_gap_keeps_the_random_splits_test_set_and_balanced_tests_are_balanced():
    from crowdnb.splits import temporal_leakage

    blocks = _blocks()
    plain_train, plain_test = split_for(EXPERIMENTS["emotions_random"], blocks, test_fraction=0.2,
                                        seed=4)
    train, test = split_for(EXPERIMENTS["emotions_random_guard"], blocks, test_fraction=0.2, seed=4)
    assert test["block_id"].tolist() == plain_test["block_id"].tolist()
    assert set(train["block_id"]) < set(plain_train["block_id"])
    assert temporal_leakage(train, test)["n_overlapping"] == 0
    assert temporal_leakage(plain_train, plain_test)["n_overlapping"] > 0
    # unequal clips: the clip split's test set is skewed unless balanced
    skewed = blocks[~((blocks["label"] == "joy") & blocks["block_id"].str.endswith(("b3", "b4")))]
    for seed in range(5):
        _, test = split_for(EXPERIMENTS["emotions_clip"], skewed, test_fraction=0.34, seed=seed,
                            balance_test=True)
        counts = test["label"].value_counts()
        assert counts.nunique() == 1 and len(counts) == 2


def _metrics(accuracy, n_test=10):
    return {"accuracy": accuracy, "accuracy_ci95": {"low": accuracy - 0.1, "high": accuracy + 0.1},
            "accuracy_ci95_clip": {"low": accuracy - 0.2, "high": min(1.0, accuracy + 0.2)},
            "clip_accuracy": 0.5, "n_test": n_test, "n_correct": round(accuracy * n_test),
            "macro_f1": accuracy, "pretrained": False,
            "counts": {"train_blocks": 40, "test_clips": 2, "train_clips": 4},
            "leakage": {"fraction": 0.25, "overlap_s": 3.0, "fraction_sharing_clip": 1.0},
            "params": {"epochs": 6}, "training": {"time_s": 90.0},
            "balanced_accuracy": accuracy - 0.05, "n_test_events": 6,
            "chance": {"constant": 0.4, "balanced": 1 / 3},
            "predicted_majority": {"share": 0.5, "class": "joy", "degenerate": False},
            "interval_event": {"ok": True, "note": "",
                               "accuracy": {"low": accuracy - 0.2, "high": accuracy + 0.1},
                               "balanced_accuracy": {"low": accuracy - 0.25,
                                                     "high": accuracy + 0.05}}}


def test_results_table_gathers_every_experiment_beside_the_paper(tmp_path):
    accuracies = {"emotions_random": 0.9, "emotions_clip": 0.6, "goal_random": 0.7, "goal_clip": 0.5}
    for key, accuracy in accuracies.items():
        path = metrics_path(tmp_path, EXPERIMENTS[key])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_metrics(accuracy)))
    table = results_table(tmp_path).set_index("key")
    assert table["accuracy"].to_dict() == accuracies
    assert table.loc["emotions_random", "paper"] == 1.0 and table.loc["goal_clip", "paper"] == 0.53
    assert table["paper"].isna().tolist() == [False, True, False, False]
    assert table.loc["goal_clip", "train_minutes"] == 1.5
    numbers = experiment_numbers(_metrics(0.8))
    assert numbers["accuracy_clip_low"] == pytest.approx(0.6) and numbers["n_correct"] == 8
    assert "emotions_random_guard" not in table.index  # optional, not run: left out
    path = metrics_path(tmp_path, EXPERIMENTS["emotions_random_guard"])
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_metrics(0.7)))
    assert results_table(tmp_path).set_index("key").loc["emotions_random_guard", "accuracy"] == 0.7
    metrics_path(tmp_path, EXPERIMENTS["goal_clip"]).unlink()
    with pytest.raises(DataError, match="goal / no goal, clip split are missing.*--only 06"):
        results_table(tmp_path)


# ---------------------------------------------------------------------------
# The book's prose helpers


def test_recipe_is_worded_from_its_values_beside_the_papers():
    from crowdnb.report import recipe_markdown

    text = recipe_markdown(TrainRecipe(epochs=2, lr=1e-3, validation_blocks=8))
    assert "for 2 epochs (the paper: 6)" in text
    assert "a learning rate of 0.001 (0.0001)" in text
    assert "a fixed, seeded subset of 8 test images" in text
    assert "all the test images" in recipe_markdown(TrainRecipe())


def test_the_from_scratch_recipe_is_alexnets_own_scaled_to_the_minibatch():
    recipe = TrainRecipe().from_scratch()
    assert recipe.lr == pytest.approx(0.01 * 10 / 128) and recipe.weight_decay == 5e-4
    assert recipe.new_layer_lr_factor == 1.0 and recipe.momentum == 0.9
    assert (recipe.epochs, recipe.batch_size) == (6, 10)
    assert TrainRecipe(batch_size=128).from_scratch().lr == pytest.approx(0.01)


def test_pretrained_admonition_follows_the_metrics():
    from crowdnb.report import pretrained_admonition

    scratch = {"pretrained": False, "pretrained_reason": "ImageNet weights unavailable (offline)"}
    tuned = {"pretrained": True, "pretrained_reason": "", "weights_info": {"source": "/w/alexnet.pth"}}
    text = pretrained_admonition(scratch)
    assert ":class: warning" in text and "NOT used" in text and "(offline)" in text
    text = pretrained_admonition([tuned, scratch])
    assert ":class: warning" in text and "1 of the 2 networks" in text
    assert "from-scratch recipe" not in text
    scratch_recipe = {**scratch, "params": {"recipe": "from scratch", "momentum": 0.9,
                                            "lr": 0.01 * 10 / 128, "weight_decay": 5e-4,
                                            "batch_size": 10}}
    text = pretrained_admonition([scratch_recipe, scratch_recipe])
    assert "All these were trained with the **from-scratch recipe**" in text
    assert "one learning rate of 0.000781 for every layer" in text
    text = pretrained_admonition([tuned, tuned])
    assert "NOT" not in text and ":class: note" in text and "are AlexNet, fine-tuned" in text
    # AlexNet asked for, EfficientNet-Lite0 trained: a warning that names both and why, in words
    packaged = {"pretrained": True, "pretrained_reason": "", "params": {"fine_tune": "top"},
                "weights_info": {"network": "efficientnet_lite0", "network_asked": "alexnet",
                                 "title": "EfficientNet-Lite0",
                                 "reason": "AlexNet's ImageNet weights unavailable (URLError: <urlopen "
                                           "error [Errno -2] Name or service not known>); ..."}}
    text = pretrained_admonition([packaged, packaged])
    assert ":class: warning" in text and "EfficientNet-Lite0 instead of AlexNet" in text
    assert "could not be downloaded" in text and "URLError" not in text
    assert "only the later layers and the new last layer were trained" in text


def test_blocks_are_placed_within_their_action_and_by_the_shot():
    import pandas as pd

    from crowdnb.evaluation import accuracy_by_phase, accuracy_by_position, shot_times

    clips = pd.DataFrame({"clip_id": ["a", "b"], "duration_s": [9.0, 6.0],
                          "params": ['{"clip": {"buildup_s": 5.0}}', '{"buildup_s": 3.0}']})
    # 2 s blocks every 1 s; centres at 1, 4.5 and 8 s in a (thirds of 9 s: 0-3, 3-6, 6-9 s).
    predictions = pd.DataFrame({
        "clip_id": ["a", "a", "a", "b", "b"],
        "start_s": [0.0, 3.5, 7.0, 0.0, 4.0],
        "end_s": [2.0, 5.5, 9.0, 2.0, 6.0],
        "label": ["goal"] * 3 + ["no_goal"] * 2,
        "correct": [False, True, True, False, True],
    })
    parts = accuracy_by_position(predictions, clips, n_parts=3).set_index("part")
    # b's blocks: centres 1 s (start) and 5 s (end third of 6 s).
    assert parts["n_blocks"].tolist() == [2, 1, 2]
    assert parts.loc["start", "accuracy"] == 0.0 and parts.loc["end", "accuracy"] == 1.0
    shots = shot_times(clips)
    assert shots.to_dict() == {"a": 5.0, "b": 3.0}
    phases = accuracy_by_phase(predictions, shots).set_index("phase")
    assert phases["n_blocks"].tolist() == [2, 1, 2]  # ends before, contains, starts after
    assert phases.loc["build-up", "accuracy"] == 0.0
    assert phases.loc["after the shot", "accuracy"] == 1.0
    assert shot_times(clips.assign(params=["{}", "{}"])) is None


def test_dataset_card_becomes_a_dropdown_without_headings(tmp_path):
    from crowdnb.report import card_markdown

    (tmp_path / "card.md").write_text("# Title\n\nSome text.\n\n## Per class\n\n| a |\n| --- |\n| 1 |\n")
    text = card_markdown(tmp_path / "card.md", title="Card")
    assert text.startswith("::::{admonition} Card\n:class: dropdown")
    assert "**Title**" in text and "**Per class**" in text
    assert not any(line.startswith("#") for line in text.splitlines())




def test_seed_spread_gathers_a_sweeps_points_and_this_run(tmp_path):
    import pandas as pd

    from crowdnb.experiments import seed_spread
    from crowdnb.workflow.stageio import sweep_results

    prefix = "07_results.results.emotions_random."
    sweep = pd.DataFrame({"point": ["seed1", "seed2"], "seed": [1, 2],
                          f"{prefix}accuracy": [0.6, 0.7], f"{prefix}balanced_accuracy": [0.6, 0.7],
                          f"{prefix}chance_balanced": [1 / 3] * 2, f"{prefix}degenerate": [0, 1]})
    run = pd.DataFrame([{"key": "emotions_random", "experiment": "emotions, random split", "seed": 0,
                         "accuracy": 0.5, "balanced_accuracy": 0.5, "chance_balanced": 1 / 3,
                         "degenerate": 0}])
    spread = seed_spread(sweep, run)
    assert spread["seed"].tolist() == [0, 1, 2]
    assert spread["balanced_accuracy"].tolist() == [0.5, 0.6, 0.7]
    assert spread["degenerate"].tolist() == [0, 0, 1]
    assert len(seed_spread(sweep, run.assign(seed=1))) == 2  # a seed the sweep has is not doubled
    import matplotlib
    matplotlib.use("Agg")
    from crowdnb.plots import plot_seed_spread

    drawn = plot_seed_spread(spread)
    assert len(drawn["dots"]) == 1 and len(drawn["dots"][0].get_offsets()) == 3
    with pytest.raises(DataError, match="no seed column"):
        seed_spread(sweep.drop(columns="seed"))
    with pytest.raises(DataError, match="holds no results of 07_results"):
        seed_spread(sweep[["point", "seed"]])
    # the table is found in the folder of runs that holds the run
    sweep_file = tmp_path / "seeds.yaml"
    sweep_file.write_text("sweep: seeds\nbase: base.yaml\nstages: [07_results]\ngrid:\n  seed: [1, 2]\n")
    (tmp_path / "base.yaml").write_text("run: default\n")
    runs = tmp_path / "runs"
    (runs / "default").mkdir(parents=True)
    with pytest.raises(DataError, match="results of sweep 'seeds' are missing.*crowdnb run --sweep"):
        sweep_results(runs / "default", sweep_file)
    (runs / "seeds").mkdir()
    sweep.to_csv(runs / "seeds" / "results.csv", index=False)
    assert sweep_results(runs / "default", sweep_file)["seed"].tolist() == [1, 2]
