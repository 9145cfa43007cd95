"""The book's figure helpers (:mod:`crowdnb.plots`) and prose helpers (:mod:`crowdnb.report`).

Each figure is drawn from a small hand-made input on the Agg backend, and the
test reads the numbers back out of the artists (bar heights, line data, image
arrays and colour limits, tick labels), so a helper that drew the wrong data
fails, not only one that raises.
"""

from __future__ import annotations

import io
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from crowdnb import plots  # noqa: E402
from crowdnb.config import PreprocessConfig  # noqa: E402
from crowdnb.errors import DataError, ParameterError  # noqa: E402
from crowdnb.spectrogram import hop_length, hz_to_mel, mel_psd_db, to_image  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def _tick_labels(labels):
    return [t.get_text() for t in labels]


def _step_heights(patch):
    """Bin counts of a ``histtype="step"`` histogram from its outline polygon."""
    return patch.get_xy()[1:-1:2, 1]


def _step_edges(patch):
    return patch.get_xy()[0:-1:2, 0]


def _vertical_lines(ax):
    """x of every vertical line (axvline) on ``ax``."""
    out = []
    for line in ax.lines:
        x = np.asarray(line.get_xdata(), dtype=float)
        if x.size == 2 and x[0] == x[1] and line.get_transform() != ax.transData:
            out.append(float(x[0]))
    return sorted(out)


# ---------------------------------------------------------------------------
# Data


def test_plot_durations_stacks_each_classs_events_into_one_bar():
    clips = pd.DataFrame({
        # out of order on purpose: the helper sorts by class and event
        "label": ["disapproval", "approval", "approval", "approval"],
        "event_id": ["e3", "e2", "e1", "e1"],
        "duration_s": [1.0, 4.0, 3.0, 2.0],
    })
    fig, ax = plt.subplots()
    bars = plots.plot_durations(clips, ax=ax)
    # one container per (class, event) segment, one rectangle in each
    assert len(bars) == 3 and all(len(b.patches) == 1 for b in bars)
    rects = [b.patches[0] for b in bars]
    widths = [r.get_width() for r in rects]
    lefts = [r.get_x() for r in rects]
    # approval: e1 (3 + 2 s) then e2 (4 s) stacked on it; disapproval: e3 alone
    assert widths == pytest.approx([5.0, 4.0, 1.0])
    assert lefts == pytest.approx([0.0, 5.0, 0.0])
    y = [r.get_y() + r.get_height() / 2 for r in rects]
    assert y[0] == pytest.approx(y[1]) and y[2] != pytest.approx(y[0])
    fig.canvas.draw()
    # one entry per class on the y axis, in sorted order
    labels = _tick_labels(ax.get_yticklabels())
    assert labels == ["approval", "disapproval"]
    assert ax.get_yticks()[labels.index("approval")] == pytest.approx(y[0])
    assert ax.get_yticks()[labels.index("disapproval")] == pytest.approx(y[2])
    # each bar is annotated with its total, clips and events (singular when one)
    assert _texts(ax) == [" 9 s, 3 clips, 2 events", " 1 s, 1 clip, 1 event"]
    assert ax.get_xlim() == pytest.approx((0.0, 9.0 * 1.45))


def test_plot_loudness_histograms_only_finite_loudness_and_marks_the_target():
    target = -23.0
    blocks = pd.DataFrame({
        "label": ["a", "a", "a", "a", "b", "b", "c"],
        "loudness_lufs": [-30.0, -28.0, -np.inf, np.nan, -20.0, -35.0, -np.inf],
        "gain_db": [7.0, 5.0, 0.0, 0.0, -3.0, 12.0, 0.0],
        "kept": [True, False, True, True, True, True, True],
    })
    fig, ax = plt.subplots()
    drawn = plots.plot_loudness(blocks, target_lufs=target, ax=ax, bins=20)
    # a class whose blocks are all silent (-inf) has no "before" histogram
    assert set(drawn["before"]) == {"a", "b"}
    # before: only the finite values of each class are counted
    heights_a = _step_heights(drawn["before"]["a"][0])
    heights_b = _step_heights(drawn["before"]["b"][0])
    assert heights_a.sum() == 2 and heights_b.sum() == 2
    edges = _step_edges(drawn["before"]["a"][0])
    assert len(edges) == 21
    # the bins span the finite values and the target, with 2 LU margins
    assert edges[0] == pytest.approx(-35.0 - 2) and edges[-1] == pytest.approx(-20.0 + 2)
    assert np.all(np.isfinite(edges))
    # after: finite *kept* blocks only, at loudness + gain (all three land on -23)
    after = drawn["after"]
    counts = np.array([p.get_height() for p in after])
    assert counts.sum() == 3
    hit = [p for p in after if p.get_height() > 0]
    assert len(hit) == 1 and hit[0].get_height() == 3
    assert hit[0].get_x() <= target <= hit[0].get_x() + hit[0].get_width()
    # the target is a vertical line at target_lufs, named in the legend
    assert list(drawn["target"].get_xdata()) == [target, target]
    legend = _tick_labels(ax.get_legend().get_texts())
    assert "target -23 LUFS" in legend


def test_plot_loudness_bins_include_a_target_outside_the_data():
    blocks = pd.DataFrame({"label": ["a", "a"], "loudness_lufs": [-40.0, -38.0],
                           "gain_db": [1.0, 1.0], "kept": [True, True]})
    drawn = plots.plot_loudness(blocks, target_lufs=-10.0, bins=10)
    edges = _step_edges(drawn["before"]["a"][0])
    assert edges[0] == pytest.approx(-42.0) and edges[-1] == pytest.approx(-8.0)
    drawn = plots.plot_loudness(blocks, target_lufs=-50.0, bins=10)
    edges = _step_edges(drawn["before"]["a"][0])
    assert edges[0] == pytest.approx(-52.0) and edges[-1] == pytest.approx(-36.0)


def test_plot_counts_bars_are_the_before_and_after_counts():
    report = pd.DataFrame({"label": ["approval", "disapproval", "neutral"],
                           "before": [120, 45, 80], "after": [45, 45, 45]})
    fig, ax = plt.subplots()
    bars = plots.plot_counts(report, ax=ax)
    assert [p.get_height() for p in bars["before"]] == [120, 45, 80]
    assert [p.get_height() for p in bars["after"]] == [45, 45, 45]
    # before and after side by side, each class's pair around its tick
    for b, a, x in zip(bars["before"], bars["after"], range(3)):
        assert b.get_x() + b.get_width() <= a.get_x() + 1e-12
        assert b.get_x() < x < a.get_x() + a.get_width()
    assert _tick_labels(ax.get_xticklabels()) == ["approval", "disapproval", "neutral"]
    assert list(ax.get_xticks()) == [0, 1, 2]
    # the counts are written on the bars
    assert _texts(ax) == ["120", "45", "80", "45", "45", "45"]


# ---------------------------------------------------------------------------
# Spectrograms


def test_plot_waveform_puts_each_sample_at_its_time():
    sr = 100
    block = np.sin(np.arange(50) / 5.0)
    fig, ax = plt.subplots()
    line = plots.plot_waveform(block, sr, ax=ax, start_s=2.0, color="r")
    np.testing.assert_allclose(line.get_xdata(), 2.0 + np.arange(50) / sr)
    np.testing.assert_allclose(line.get_ydata(), block)
    assert ax.get_xlim() == pytest.approx((2.0, 2.49))
    assert line.get_color() == "r" and line.get_linewidth() == 0.5


def test_plot_spectrogram_uses_the_db_range_and_spans_the_block():
    sr = 16000
    config = PreprocessConfig.from_flat(sr=sr, db_low=-100.0, db_high=-30.0, n_colors=8)
    n = sr // 2  # a 0.5 s block
    rng = np.random.default_rng(0)
    block = (0.1 * rng.standard_normal(n)).astype(np.float32)
    spec = config.spectrogram
    S_db = mel_psd_db(block, sr, win_length=spec.win_length, frame_hop_s=spec.frame_hop_s,
                      n_fft=spec.n_fft, n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.fmax)
    fig, ax = plt.subplots()
    start = 1.5
    image = plots.plot_spectrogram(S_db, sr, ax=ax, config=config, start_s=start)
    # the colours: the image's dB range and its quantised palette
    assert image.get_clim() == (-100.0, -30.0)
    assert image.get_cmap().N == 8
    np.testing.assert_array_equal(image.get_array(), S_db)
    assert image.origin == "lower"
    # time: the frames' centres +- half a frame increment, inside the block
    hop, win = hop_length(sr, spec.frame_hop_s), spec.win_length
    n_frames = S_db.shape[1]
    assert n_frames == 1 + (n - win) // hop
    left, right, bottom, top = image.get_extent()
    assert left == pytest.approx(start + (win / 2 - hop / 2) / sr)
    assert right == pytest.approx(start + (win / 2 + (n_frames - 1) * hop + hop / 2) / sr)
    assert start <= left and right <= start + n / sr
    # ... and it covers the block but for less than a window at the ends
    assert left - start < win / sr and start + n / sr - right < win / sr
    # frequency: mel bands between fmin and sr / 2, ticks labelled in Hz
    mels = np.linspace(hz_to_mel(spec.fmin), hz_to_mel(sr / 2), spec.n_mels + 2)
    step = mels[1] - mels[0]
    assert bottom == pytest.approx(mels[1] - step / 2) and top == pytest.approx(mels[-2] + step / 2)
    assert _tick_labels(ax.get_yticklabels()) == ["100", "500", "1k", "2k", "5k"]
    np.testing.assert_allclose(ax.get_yticks(), hz_to_mel([100, 500, 1000, 2000, 5000]))
    assert image.colorbar is not None
    assert image.colorbar.ax.get_ylabel() == "PSD (dB re 1/Hz, full scale)"


def test_plot_spectrogram_colours_are_the_images_palette():
    config = PreprocessConfig.from_flat(db_low=-100.0, db_high=-20.0, n_colors=8)
    step = 10.0  # (high - low) / n_colors
    centres = -100.0 + step * (np.arange(8) + 0.5)
    # each colour's centre, then out of range below and above, and both ends exactly
    values = np.concatenate([centres, [-150.0, 0.0, -100.0, -20.0]])
    S_db = np.tile(values, (4, 1))
    image = plots.plot_spectrogram(S_db, 44100, config=config, colorbar=False)
    drawn = np.round(image.to_rgba(image.get_array())[..., :3] * 255.0).astype(np.uint8)
    expected = to_image(S_db, db_range=(-100.0, -20.0), size=S_db.shape, n_colors=8)[::-1]
    np.testing.assert_array_equal(drawn, expected)
    # eight different colours, low ones below the range in the first, high in the last
    assert len({tuple(c) for c in drawn[0, :8]}) == 8
    assert tuple(drawn[0, 8]) == tuple(drawn[0, 0]) == tuple(drawn[0, 10])
    assert tuple(drawn[0, 9]) == tuple(drawn[0, 7]) == tuple(drawn[0, 11])


def test_plot_spectrogram_without_colorbar():
    S_db = np.full((128, 10), -60.0)
    image = plots.plot_spectrogram(S_db, 44100, colorbar=False)
    assert image.colorbar is None
    assert image.get_clim() == PreprocessConfig().image.db_range
    assert len(image.axes.figure.axes) == 1


def _rgb(value, shape=(4, 5)):
    return np.full(shape + (3,), value, dtype=np.uint8)


def test_plot_gallery_makes_one_row_per_class_in_sorted_order(tmp_path):
    from PIL import Image

    png = tmp_path / "b0.png"
    Image.fromarray(_rgb(200)).save(png)
    images = [_rgb(10), png, _rgb(11), _rgb(12), _rgb(13), _rgb(20), _rgb(21)]
    labels = ["c", "b", "c", "c", "c", "a", "a"]
    fig = plt.figure()
    axes = plots.plot_gallery(images, labels, n_per_class=3, fig=fig)
    assert axes.shape == (3, 3)
    assert [row[0].get_ylabel() for row in axes] == ["a", "b", "c"]
    # the first n_per_class images of each class, in the order given
    shown = [[int(ax.images[0].get_array()[0, 0, 0]) if ax.images else None for ax in row]
             for row in axes]
    assert shown == [[20, 21, None], [200, None, None], [10, 11, 12]]
    # a PNG path is read as RGB
    assert axes[1, 0].images[0].get_array().shape == (4, 5, 3)
    # empty cells are blanked, filled ones carry no ticks
    assert [[ax.axison for ax in row] for row in axes] == \
        [[True, True, False], [True, False, False], [True, True, True]]
    assert all(len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
               for ax in axes.ravel() if ax.axison)


@pytest.mark.parametrize("images, labels, n_per_class, message", [
    ([_rgb(1)], ["a"], 0, "n_per_class"),
    ([_rgb(1)], ["a"], True, "n_per_class"),
    ([_rgb(1)], ["a"], 2.0, "n_per_class"),
    ([_rgb(1), _rgb(2)], ["a"], 2, "2 images but 1 labels"),
    ([], [], 2, "at least one image"),
])
def test_plot_gallery_rejects_bad_arguments(images, labels, n_per_class, message):
    with pytest.raises(ParameterError, match=message):
        plots.plot_gallery(images, labels, n_per_class=n_per_class)


# ---------------------------------------------------------------------------
# Training runs


def _history():
    return pd.DataFrame({
        "iteration": [10, 20, 30, 40],
        "train_loss": [1.2, 0.9, 0.7, 0.5],
        "train_accuracy": [0.4, 0.55, 0.7, 0.8],
        "val_loss": [1.1, 1.0, 0.8, 0.75],
        "val_accuracy": [0.5, 0.6, 0.65, 0.7],
    })


def _check_curves(lines, history, names):
    assert set(lines) == {f"{kind}_{name}" for kind in ("train", "val") for name in names}
    for key, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), history["iteration"])
        np.testing.assert_allclose(line.get_ydata(), history[key])


def test_plot_learning_curves_plot_the_history_at_its_iterations(tmp_path):
    history = _history()
    lines = plots.plot_learning_curves(history, iterations_per_epoch=15)
    _check_curves(lines, history, ["accuracy", "loss"])
    acc_ax, loss_ax = lines["train_accuracy"].axes, lines["train_loss"].axes
    assert acc_ax is not loss_ax
    assert lines["val_accuracy"].axes is acc_ax and lines["val_loss"].axes is loss_ax
    assert acc_ax.get_ylim() == pytest.approx((-0.02, 1.02))
    assert loss_ax.get_xlabel() == "iteration" and loss_ax.get_yscale() == "log"
    # an epoch boundary every 15 iterations up to the last one (40)
    assert _vertical_lines(acc_ax) == [15.0, 30.0] and _vertical_lines(loss_ax) == [15.0, 30.0]
    # read from history.csv, the same curves
    path = tmp_path / "history.csv"
    history.to_csv(path, index=False)
    _check_curves(plots.plot_learning_curves(path), history, ["accuracy", "loss"])


def test_plot_learning_curves_one_metric_on_a_given_axes():
    history = _history()
    fig, ax = plt.subplots()
    lines = plots.plot_learning_curves(history, ax=ax, metric="loss")
    _check_curves(lines, history, ["loss"])
    assert all(line.axes is ax for line in lines.values())
    assert ax.get_ylabel() == "loss (cross-entropy, log scale)"
    assert _vertical_lines(ax) == []
    # an epoch ending on the last iteration is drawn too
    fig, ax = plt.subplots()
    plots.plot_learning_curves(history, ax=ax, metric="accuracy", iterations_per_epoch=20)
    assert _vertical_lines(ax) == [20.0, 40.0]
    assert ax.get_ylabel() == "accuracy"


def test_plot_learning_curves_reject_bad_arguments(tmp_path):
    history = _history()
    with pytest.raises(ParameterError, match="metric"):
        plots.plot_learning_curves(history, metric="f1")
    fig, ax = plt.subplots()
    with pytest.raises(ParameterError, match="2 Axes"):
        plots.plot_learning_curves(history, ax=ax)
    with pytest.raises(DataError, match="val_loss"):
        plots.plot_learning_curves(history.drop(columns="val_loss"))
    with pytest.raises(DataError, match="not found"):
        plots.plot_learning_curves(tmp_path / "missing.csv")


def _metrics():
    return {
        "confusion": {
            "labels": ["approval", "disapproval", "neutral"],
            # row = true class, column = predicted class
            "counts": [[6, 2, 0], [1, 3, 0], [0, 0, 0]],
        },
        "per_class": {
            "approval": {"precision": 6 / 7, "recall": 0.75, "f1": 0.8, "support": 8},
            "disapproval": {"precision": 0.6, "recall": 0.75, "f1": 2 / 3, "support": 4},
            "neutral": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        },
        "training": {"iterations_per_epoch": 25},
    }


def _cell_texts(ax):
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def test_plot_confusion_shows_the_counts_row_normalised(tmp_path):
    metrics = _metrics()
    fig, ax = plt.subplots()
    image = plots.plot_confusion(metrics, ax=ax)
    # each true class's row sums to 1; an empty row stays 0 (no division by zero)
    expected = np.array([[0.75, 0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(image.get_array(), expected)
    assert image.get_clim() == (0, 1)
    cells = _cell_texts(ax)  # keyed (row, column) = (true, predicted)
    assert len(cells) == 9
    assert cells[(0, 0)] == "6\n(75%)" and cells[(0, 1)] == "2\n(25%)"
    assert cells[(1, 0)] == "1\n(25%)" and cells[(1, 1)] == "3\n(75%)"
    assert cells[(2, 2)] == "0\n(0%)"
    labels = ["approval", "disapproval", "neutral"]
    assert _tick_labels(ax.get_yticklabels()) == labels
    assert _tick_labels(ax.get_xticklabels()) == labels
    assert ax.get_ylabel() == "true label" and ax.get_xlabel() == "predicted label"
    # from metrics.json, the same matrix
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics), encoding="utf-8")
    np.testing.assert_allclose(plots.plot_confusion(path).get_array(), expected)


def test_plot_confusion_without_normalisation_colours_the_counts():
    fig, ax = plt.subplots()
    image = plots.plot_confusion(_metrics(), ax=ax, normalize=False, cmap="Greens")
    np.testing.assert_array_equal(image.get_array(), [[6, 2, 0], [1, 3, 0], [0, 0, 0]])
    assert image.get_clim() == (0, 6)
    assert image.get_cmap().name == "Greens"
    cells = _cell_texts(ax)
    assert cells[(0, 1)] == "2" and cells[(1, 0)] == "1" and cells[(1, 1)] == "3"
    # the largest count is dark, so written in white
    assert [t.get_color() for t in ax.texts if t.get_text() == "6"] == ["white"]


def test_plot_per_class_bars_are_the_scores():
    metrics = _metrics()
    fig, ax = plt.subplots()
    bars = plots.plot_per_class(metrics, ax=ax)
    assert set(bars) == {"precision", "recall", "f1"}
    per_class = metrics["per_class"]
    for score, container in bars.items():
        assert [p.get_height() for p in container] == \
            pytest.approx([per_class[c][score] for c in per_class])
    # precision, recall, F1 left to right around each class's tick
    for k in range(3):
        xs = [bars[s].patches[k].get_x() for s in ("precision", "recall", "f1")]
        assert xs == sorted(xs) and xs[0] < k < xs[2] + bars["f1"].patches[k].get_width()
    assert _tick_labels(ax.get_xticklabels()) == \
        ["approval\n(n=8)", "disapproval\n(n=4)", "neutral\n(n=0)"]
    assert _tick_labels(ax.get_legend().get_texts()) == ["precision", "recall", "F1"]


def test_plot_training_draws_the_three_panels(tmp_path):
    metrics, history = _metrics(), _history()
    path = tmp_path / "history.csv"
    history.to_csv(path, index=False)
    fig = plt.figure()
    axes = plots.plot_training(metrics, path, fig=fig)
    assert set(axes) == {"accuracy", "loss", "confusion", "per_class"}
    assert all(ax.figure is fig for ax in axes.values())
    for name in ("accuracy", "loss"):
        ax = axes[name]
        train, val = ax.lines[0], ax.lines[1]
        np.testing.assert_array_equal(train.get_xdata(), history["iteration"])
        np.testing.assert_allclose(train.get_ydata(), history[f"train_{name}"])
        np.testing.assert_allclose(val.get_ydata(), history[f"val_{name}"])
        # the epoch ends from the metrics' iterations_per_epoch (25; last iteration 40)
        assert _vertical_lines(ax) == [25.0]
    assert axes["loss"].get_shared_x_axes().joined(axes["loss"], axes["accuracy"])
    (image,) = axes["confusion"].images
    assert image.get_array()[0, 0] == pytest.approx(0.75)
    heights = [p.get_height() for p in axes["per_class"].patches]
    assert len(heights) == 9 and heights[:3] == pytest.approx([6 / 7, 0.6, 0.0])


def test_plot_training_without_epoch_length_draws_no_epoch_lines():
    metrics = _metrics()
    del metrics["training"]
    axes = plots.plot_training(metrics, _history())
    assert _vertical_lines(axes["accuracy"]) == [] and _vertical_lines(axes["loss"]) == []


# ---------------------------------------------------------------------------
# Results


def test_plot_accuracies_one_error_bar_per_row_and_paper_markers_where_given():
    table = pd.DataFrame({
        "experiment": ["random split", "by event", "by match"],
        "accuracy": [0.9, 0.7, 0.55],
        "low": [0.85, 0.6, 0.4],
        "high": [0.94, 0.78, 0.7],
        "paper": [0.95, np.nan, 0.8],
    })
    fig, ax = plt.subplots()
    drawn = plots.plot_accuracies(table, ax=ax)
    data_line, _caps, (bars,) = drawn["run"].lines
    # the first row at the top
    y = np.array([2, 1, 0])
    np.testing.assert_allclose(data_line.get_xdata(), table["accuracy"])
    np.testing.assert_allclose(data_line.get_ydata(), y)
    segments = bars.get_segments()
    assert len(segments) == 3
    for seg, low, high, yy in zip(segments, table["low"], table["high"], y):
        np.testing.assert_allclose(seg, [[low, yy], [high, yy]])
    # the paper's numbers only where it gives one, on their row
    paper = drawn["paper"]
    np.testing.assert_allclose(paper.get_xdata(), [0.95, 0.8])
    np.testing.assert_allclose(paper.get_ydata(), [2, 0])
    labels = dict(zip(ax.get_yticks(), _tick_labels(ax.get_yticklabels())))
    assert labels == {2: "random split", 1: "by event", 0: "by match"}
    assert ax.get_xlim() == pytest.approx((-0.02, 1.02))


def test_plot_accuracies_without_paper_numbers_draws_no_markers():
    table = pd.DataFrame({"experiment": ["own data"], "accuracy": [0.6], "low": [0.5],
                          "high": [0.7], "paper": [np.nan]})
    fig, ax = plt.subplots()
    drawn = plots.plot_accuracies(table, ax=ax)
    assert drawn["paper"] is None
    assert len(ax.lines) == 1 + len(drawn["run"].lines[1])  # the run's marker and caps only


def test_plot_accuracy_by_position_one_line_per_protocol():
    parts = ["start", "middle", "end"]
    tables = {
        "random split": pd.DataFrame({"part": parts, "n_blocks": [10, 12, 9],
                                      "accuracy": [0.9, 0.8, 0.7]}),
        "by event": pd.DataFrame({"part": parts, "n_blocks": [4, 5, 6],
                                  "accuracy": [0.5, np.nan, 0.75]}),
    }
    fig, ax = plt.subplots()
    lines = plots.plot_accuracy_by_position(tables, ax=ax)
    assert list(lines) == ["random split", "by event"]
    for name, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])
        np.testing.assert_allclose(line.get_ydata(), tables[name]["accuracy"])
        assert line.get_label() == \
            f"{name} (test blocks: {', '.join(str(n) for n in tables[name]['n_blocks'])})"
    assert _tick_labels(ax.get_xticklabels()) == parts
    chance = [line for line in ax.lines if line not in lines.values()]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.5, 0.5]


# ---------------------------------------------------------------------------
# Report


@pytest.fixture
def glued(monkeypatch):
    """Replace myst_nb.glue with a recorder of (name, value, display)."""
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue",
                        lambda name, variable, display=True: calls.append((name, variable, display)))
    return calls


def test_glue_values_glues_python_numbers_under_the_prefix_without_display(glued):
    from crowdnb.report import glue_values

    result = glue_values({"accuracy": np.float64(0.875), "n_blocks": np.int64(42),
                          "pretrained": np.bool_(False), "split": "by event", "epochs": 6,
                          "f1": np.float32(0.5)}, prefix="exp1_")
    assert result is None
    assert [name for name, _, _ in glued] == \
        ["exp1_accuracy", "exp1_n_blocks", "exp1_pretrained", "exp1_split", "exp1_epochs", "exp1_f1"]
    assert all(display is False for _, _, display in glued)
    values = {name: value for name, value, _ in glued}
    # numpy scalars arrive as the Python types (exact type, not a subclass)
    assert type(values["exp1_accuracy"]) is float and values["exp1_accuracy"] == 0.875
    assert type(values["exp1_n_blocks"]) is int and values["exp1_n_blocks"] == 42
    assert type(values["exp1_pretrained"]) is bool and values["exp1_pretrained"] is False
    assert type(values["exp1_f1"]) is float and values["exp1_f1"] == 0.5
    assert values["exp1_split"] == "by event" and values["exp1_epochs"] == 6


def test_glue_values_without_prefix(glued):
    from crowdnb.report import glue_values

    glue_values({"x": 1.5})
    assert glued == [("x", 1.5, False)]


def test_glue_markdown_glues_a_markdown_object_without_display(glued):
    from IPython.display import Markdown

    from crowdnb.report import glue_markdown

    text = ":::{note}\nSome **MyST**.\n:::\n"
    assert glue_markdown("recipe", text) is None
    ((name, value, display),) = glued
    assert name == "recipe" and display is False
    assert isinstance(value, Markdown) and value.data == text


def _write_noise(path, seconds, sr, seed=0):
    import soundfile as sf

    y = (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)
    sf.write(path, y, sr, subtype="FLOAT")
    return y


def _decoded(audio):
    """The samples and rate of an embedded IPython Audio (16-bit WAV bytes)."""
    import soundfile as sf

    data, rate = sf.read(io.BytesIO(audio.data), dtype="float64")
    return data, rate


def _normalised(y):
    return y / np.abs(y).max()


def test_audio_excerpt_embeds_seconds_times_sr_samples_from_the_middle(tmp_path):
    from IPython.display import Audio

    from crowdnb.report import audio_excerpt

    path = tmp_path / "clip.wav"
    y = _write_noise(path, 10.0, 8000)
    audio = audio_excerpt(path, seconds=2.0, sr=8000)
    assert isinstance(audio, Audio) and audio.embed
    data, rate = _decoded(audio)
    assert rate == 8000 and data.size == 16000
    start = (y.size - 16000) // 2  # 4 s into the 10 s clip
    # IPython normalises the excerpt to full scale and writes 16-bit PCM
    np.testing.assert_allclose(data, _normalised(y[start:start + 16000]), atol=1e-4)
    assert not np.allclose(data, _normalised(y[:16000]), atol=1e-2)


def test_audio_excerpt_at_an_offset_and_resampled(tmp_path):
    from crowdnb.report import audio_excerpt

    path = tmp_path / "clip.wav"
    y = _write_noise(path, 3.0, 8000, seed=1)
    data, _ = _decoded(audio_excerpt(path, seconds=1.0, sr=8000, offset_s=0.5))
    np.testing.assert_allclose(data, _normalised(y[4000:12000]), atol=1e-4)
    # near the end: what is left of the clip
    data, _ = _decoded(audio_excerpt(path, seconds=1.0, sr=8000, offset_s=2.5))
    assert data.size == 4000
    # a clip at another rate is resampled to sr: seconds * sr samples
    other = tmp_path / "clip16k.wav"
    _write_noise(other, 3.0, 16000, seed=2)
    data, rate = _decoded(audio_excerpt(other, seconds=1.5, sr=8000))
    assert rate == 8000 and data.size == 12000
    data, rate = _decoded(audio_excerpt(other, seconds=1.5, sr=16000))
    assert rate == 16000 and data.size == 24000


def test_audio_excerpt_shorter_clip_than_the_excerpt_is_used_whole(tmp_path):
    from crowdnb.report import audio_excerpt

    path = tmp_path / "short.wav"
    y = _write_noise(path, 0.5, 8000, seed=3)
    data, _ = _decoded(audio_excerpt(path, seconds=4.0, sr=8000))
    np.testing.assert_allclose(data, _normalised(y), atol=1e-4)


def test_audio_excerpt_rejects_a_negative_offset_and_length(tmp_path):
    from crowdnb.errors import ParameterError
    from crowdnb.report import audio_excerpt

    path = tmp_path / "short.wav"
    _write_noise(path, 0.5, 8000, seed=4)
    with pytest.raises(ParameterError, match="offset_s"):
        audio_excerpt(path, seconds=4.0, sr=8000, offset_s=-0.25)
    with pytest.raises(ParameterError, match="seconds"):
        audio_excerpt(path, seconds=0.0, sr=8000)


def test_audio_excerpt_past_the_end_is_a_data_error(tmp_path):
    from crowdnb.report import audio_excerpt

    path = tmp_path / "clip.wav"
    _write_noise(path, 2.0, 8000)
    with pytest.raises(DataError, match="no audio at 2.0 s"):
        audio_excerpt(path, seconds=1.0, sr=8000, offset_s=2.0)
    with pytest.raises(DataError, match=r"clip\.wav"):
        audio_excerpt(path, seconds=1.0, sr=8000, offset_s=30.0)
