"""The book's prose helpers: glue, admonitions, the dataset card, listening excerpts.

Numbers reach the prose by *glue* (myst-nb): a notebook glues a value under a
name, and a Markdown cell shows it with ``{glue:text}`name:.3f```. A block of
MyST glued with :func:`glue_markdown` (an admonition, a sentence chosen by the
numbers) is shown with the ``{glue:md}`` directive. Nothing here computes a
result: it words what the library computed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .config import TrainRecipe
from .errors import DataError, ParameterError
from .significance import format_p as _p

__all__ = [
    "glue_values",
    "glue_markdown",
    "glue_html",
    "markdown_table",
    "pretrained_admonition",
    "ablation_findings",
    "recipe_markdown",
    "verdict",
    "diagnosis_sentence",
    "comparison",
    "paired_comparison",
    "guard_gap_sentence",
    "paired_sentence",
    "card_markdown",
    "audio_excerpt",
]


def glue_values(values: Mapping[str, Any], *, prefix: str = "") -> None:
    """Glue numbers and short strings for the page's prose.

    Refer to them in a Markdown cell of the same notebook with
    ``{glue:text}`name:.3f``` (numbers: give a format spec; ``:.0%`` for a
    fraction as a percentage) or ``{glue:text}`name``` (strings, integers).
    numpy scalars are converted to Python numbers first.

    Nothing is displayed, and nothing is returned (so that a call ending a
    cell adds no output to the page).
    """
    from myst_nb import glue

    for name, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        glue(prefix + name, value, display=False)


def glue_markdown(name: str, text: str) -> None:
    """Glue a block of MyST Markdown, shown with ``{glue:md}`` and ``:format: myst``."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(text), display=False)


def glue_html(name: str, markdown: str) -> None:
    """Glue a block of Markdown rendered to HTML, for pasting into another page.

    Another page shows it with the ``{glue:any}`` directive and
    ``<notebook path>::<name>`` (myst-nb pastes HTML, not Markdown, across
    pages); the Markdown is rendered by markdown-it, the parser MyST builds on.
    """
    from IPython.display import HTML
    from markdown_it import MarkdownIt
    from myst_nb import glue

    glue(name, HTML(MarkdownIt("commonmark").render(markdown)), display=False)


def markdown_table(table: Any, *, bold: str | None = None, digits: int = 3) -> str:
    """A data frame as a Markdown (pipe) table, whose long cells wrap on the page.

    Parameters
    ----------
    table : pd.DataFrame
        The rows to show, columns in order (the index is left out).
    bold : str, optional
        A column whose cells are set in bold (a verdict, a status).
    digits : int
        Decimals of floating-point cells.
    """
    def cell(value: Any, column: str) -> str:
        if isinstance(value, (float, np.floating)):
            text = "" if not np.isfinite(value) else f"{value:.{digits}f}"
        else:
            text = str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return f"**{text}**" if column == bold and text else text

    import pandas as pd

    from .clips import markdown_table as pipes

    return pipes(pd.DataFrame({str(c): [cell(v, str(c)) for v in table[c]]
                               for c in table.columns})) + "\n"


def pretrained_admonition(metrics: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """The MyST admonition that says which network was trained, and from which weights.

    Generated from the training metrics (``pretrained``, ``weights_info``,
    ``params``), never typed, so the warning cannot be forgotten or go stale.
    Three cases: a network from random initialisation (a warning: not transfer
    learning); the paper's method with another network than the one asked
    for, because its ImageNet weights could not be had (a warning, in one
    plain sentence, with the reason); the network asked for, from verified
    ImageNet weights (a note).

    Parameters
    ----------
    metrics : mapping or sequence of mappings
        Metrics of one or several trainings (:func:`crowdnb.train.train_model`'s
        dict), each with ``pretrained`` (bool) and ``pretrained_reason``.

    Returns
    -------
    text : str
        A MyST admonition; glue it with :func:`glue_markdown` and show it with
        the ``{glue:md}`` directive (``:format: myst``).
    """
    runs = [metrics] if isinstance(metrics, Mapping) else list(metrics)
    if not runs:
        raise DataError("pretrained_admonition: no training metrics given")
    scratch = [m for m in runs if not bool(m["pretrained"])]
    if scratch:
        return _scratch_admonition(runs, scratch)
    infos = [m.get("weights_info") or {} for m in runs]
    titles = sorted({str(i.get("title") or "AlexNet") for i in infos})
    layers = _fine_tuned_layers(runs)
    substituted = [i for i in infos if i.get("network_asked", i.get("network")) != i.get("network")]
    if substituted:
        asked = NETWORK_TITLES.get(str(substituted[0]["network_asked"]), substituted[0]["network_asked"])
        why = _unavailable(str(substituted[0].get("reason") or "").split(";")[0])
        return (f":::{{admonition}} The paper's method with {', '.join(titles)} instead of {asked}\n"
                ":class: warning\n"
                f"{asked}'s ImageNet weights could not be had where this book was built, so the "
                f"networks on this page are {' and '.join(titles)}, fine-tuned from ImageNet weights "
                f"that install with the project (checked by their SHA-256 and on photographs), "
                f"with the paper's recipe{layers}: transfer learning as in the paper, with another "
                f"network.\n\nWhy: {_portable(why)}.\n\n{_alexnet_howto()}\n:::\n")
    return (":::{admonition} ImageNet-pretrained weights\n:class: note\n"
            f"The networks on this page are {' and '.join(titles)}, fine-tuned from ImageNet "
            f"weights checked by their SHA-256 and on photographs, as in the paper{layers}.\n:::\n")


def _unavailable(reason: str) -> str:
    """Why weights were unavailable, in words (not an exception's text)."""
    if "URLError" in reason or "Errno" in reason or "urlopen" in reason:
        return ("they are not in torch's cache and could not be downloaded (no connection to "
                "download.pytorch.org)")
    return reason


#: How the book names each network (:data:`crowdnb.networks.NETWORKS`' titles, without torch).
NETWORK_TITLES = {"alexnet": "AlexNet", "efficientnet_lite0": "EfficientNet-Lite0"}


def _fine_tuned_layers(runs: Sequence[Mapping[str, Any]]) -> str:
    """The deviation from the paper's all-layer fine-tuning, in words ("" when none)."""
    top = [m for m in runs if (m.get("params") or {}).get("fine_tune") == "top"]
    if not top:
        return ""
    return ("; only the later layers and the new last layer were trained, on the outputs of the "
            "frozen early layers (a standard form of transfer learning and a deviation from the "
            "paper, which fine-tunes every layer, made to fit the book's time on a 2-core CPU; "
            "`fine_tune: all` trains every layer)")


def _alexnet_howto() -> str:
    return ("To use AlexNet's weights on your machine, put `alexnet-owt-7be5be79.pth` (from "
            "<https://download.pytorch.org/models/alexnet-owt-7be5be79.pth>) in the folder "
            "`python -c \"import torch; print(torch.hub.get_dir())\"` prints, under "
            "`checkpoints/`, and run the study again.")


def _scratch_admonition(runs: Sequence[Mapping[str, Any]], scratch: Sequence[Mapping[str, Any]]) -> str:
    reasons = sorted({str(m.get("pretrained_reason") or "").strip() for m in scratch} - {""})
    if len(runs) == 1:
        which, result = "The network on this page", "a network"
    else:
        which, result = f"{len(scratch)} of the {len(runs)} networks on this page", "networks"
    body = (
        f"**Pretrained ImageNet weights were NOT used.** {which} started from **random "
        "initialisation**, not from ImageNet weights as in the paper: the results below are those "
        f"of {result} trained from scratch on the spectrogram images, not a reproduction of "
        "transfer learning."
    )
    if reasons:
        body += "\n\nWhy: " + "; ".join(_portable(r) for r in reasons)
    body += "\n\n" + _scratch_recipe(scratch) + "\n\n" + _alexnet_howto()
    return (":::{admonition} Trained from random initialisation, not ImageNet weights\n"
            f":class: warning\n{body}\n:::\n")


def _count_of(n: int) -> str:
    return f"{n} of these {'was' if n == 1 else 'were'}"


def _scratch_recipe(scratch: Sequence[Mapping[str, Any]]) -> str:
    """Which recipe the networks from random weights were trained with, in words."""
    params = [m.get("params") or {} for m in scratch]
    own = [p for p in params if p.get("recipe") == "from scratch"]
    parts = []
    if own:
        p = own[0]
        parts.append(
            f"{'All these were' if len(own) == len(params) else _count_of(len(own))} trained with the "
            f"**from-scratch recipe**: He-initialised weights, SGD with momentum {p['momentum']:g}, "
            f"one learning rate of {p['lr']:.3g} for every layer and weight decay "
            f"{p['weight_decay']:g}, that is AlexNet's original recipe with its learning rate "
            f"scaled linearly to minibatches of {p['batch_size']}, fixed before any result was "
            "seen. The paper's fine-tuning recipe is meant for pretrained weights: from random "
            "ones it leaves a network that answers one class (the baselines chapter shows it).")
    if len(own) < len(params):
        parts.append(f"{_count_of(len(params) - len(own))} trained with the recipe as given (the "
                     "paper's fine-tuning recipe unless changed), made for pretrained weights.")
    return " ".join(parts)


def _portable(reason: str) -> str:
    """A reason without the paths of the machine that built the book."""
    from .weights import hub_checkpoints_dir

    return reason.replace(str(hub_checkpoints_dir()), "`torch.hub.get_dir()`/checkpoints").replace(
        os.path.expanduser("~"), "~")


def recipe_markdown(recipe: TrainRecipe, *, ran: Mapping[str, Any] | None = None) -> str:
    """The training recipe in words: as it ran, with the paper's values beside it.

    Glue it with :func:`glue_markdown` and show it with ``{glue:md}`` in every
    chapter that trains a network, so the recipe is described once.

    Parameters
    ----------
    recipe : TrainRecipe
        The recipe asked for.
    ran : mapping, optional
        A training's metrics (``params`` holds the recipe it ran with, and
        ``params["recipe"]`` says whether it was the from-scratch one): the
        sentence then gives the values that ran, and the ones asked for where
        they differ.
    """
    paper = TrainRecipe()
    params = dict((ran or {}).get("params") or {})
    used = TrainRecipe.from_dict({k: params[k] for k in recipe.to_dict() if k in params}) \
        if params else recipe
    validation = ("a fixed, seeded subset of "
                  f"{used.validation_blocks} test images (the final evaluation uses all of them)"
                  if used.validation_blocks else "all the test images")
    every = (f"every {used.validate_every} iterations ({paper.validate_every})"
             if used.validate_every else "after the last iteration only")
    text = (
        f"The training recipe{' as it ran' if params else ''}: stochastic gradient descent with "
        f"momentum {used.momentum:g} for {used.epochs} epochs (the paper: {paper.epochs}), "
        f"minibatches of {used.batch_size} images ({paper.batch_size}), a learning rate of "
        f"{used.lr:g} ({paper.lr:g}) and an L2 factor of {used.weight_decay:g} "
        f"({paper.weight_decay:g}), {used.new_layer_lr_factor:g} times that rate for the new last "
        f"layer ({paper.new_layer_lr_factor:g}), and a validation {every} on {validation}."
    )
    if used != recipe:
        changed = [f"{name} {getattr(recipe, name):g}" for name in
                   ("lr", "weight_decay", "new_layer_lr_factor", "momentum")
                   if getattr(recipe, name) != getattr(used, name)]
        text += (" It is the **from-scratch recipe**, for a network from random weights; the "
                 f"recipe asked for had {', '.join(changed)}."
                 if params.get("recipe") == "from scratch" else
                 f" The recipe asked for had {', '.join(changed)}.")
    return text + "\n"


def paired_sentence(effect: Mapping[str, Any]) -> str:
    """One row of :func:`crowdnb.pretraining.paired_effects` in words (:func:`paired_comparison`)."""
    return paired_comparison(
        {"balanced_accuracy": {k: effect[v] for k, v in (("difference", "difference"),
                                                           ("low", "low"), ("high", "high"))},
         **{k: effect[k] for k in ("p", "min_p", "n_events", "n_test", "p_holm", "holm_m")}},
        first_name=effect["first"], second_name=effect["second"])


def _test_words(numbers: Mapping[str, Any], units: str) -> tuple[str, float, float]:
    """The permutation test's clause, and its (Holm-adjusted where given) p-values."""
    from .significance import LEVEL

    holm = numbers.get("p_holm")
    p_above = float(holm if holm is not None and np.isfinite(holm) else numbers["p_above_chance"])
    p_below = float(numbers["p_below_chance"])
    n_events = int(numbers["n_test_events"])
    clause = f"permutation test over its {n_events} test events, {_p(p_above)}"
    if holm is not None and np.isfinite(holm):
        clause += f", Holm-adjusted over the {int(numbers['holm_m'])} tests of this page"
    if numbers.get("min_p", 0.0) >= LEVEL:
        clause += (f"; with {n_events} test events no result could reach {LEVEL:g}, so this test "
                   "could not have succeeded")
    return clause, p_above, p_below


def verdict(numbers: Mapping[str, Any], *, name: str = "The network",
            units: str = "test blocks", interval: str = "event") -> str:
    """What one training's test score says, in a sentence chosen by its numbers.

    The rules, in order: a cross-validation whose fold networks did not all
    learn says how many did not; a network that gives one class to nearly
    every test block (``degenerate``) is called a constant classifier, and one
    whose training loss stayed near ln K is said not to have learnt, whatever
    its accuracy; otherwise the event-level permutation test
    (:func:`crowdnb.significance.permutation_above_chance`, Holm-adjusted when
    ``p_holm`` is given) decides between above chance, below chance and
    cannot be told from chance, and the balanced accuracy's interval over test
    events is quoted where the test set allows one.

    Parameters
    ----------
    numbers : mapping
        :func:`crowdnb.experiments.experiment_numbers` of the training, with
        ``p_holm`` and ``holm_m`` where the page tests several.
    name : str
        How the sentence names the network.
    units : str
        What was scored, as the sentence names it ("test blocks", "test actions").
    interval : {"event", "clip"}
        The interval quoted: the balanced accuracy's over test events (new
        crowds: the clip splits) or the accuracy's over test clips (new
        moments of the same crowds: the random splits, whose test events are
        training events too).
    """
    from .evaluation import DEGENERATE_SHARE, UNLEARNT_LOSS_SHARE
    from .significance import LEVEL

    bal, cb = numbers["balanced_accuracy"], numbers["chance_balanced"]
    lead = ""
    n_folds, not_learnt = int(numbers.get("n_folds", 0)), int(numbers.get("folds_not_learnt", 0))
    one_class, score_folds = int(numbers.get("degenerate_folds", 0)), int(numbers.get("n_score_folds", 0))
    if n_folds and not_learnt:
        lead = (f"**{_count(not_learnt, n_folds)} fold networks did not learn** (their training "
                "loss stayed near that of guessing, or they answer one class); the pooled score "
                "mixes their answers with the others'. ")
    elif one_class and one_class < score_folds:
        lead = (f"**{_count(one_class, score_folds)} fold classifiers answer one class** for 90 % "
                "or more of their test blocks; the pooled score mixes their answers with the "
                "others'. ")
    if numbers["degenerate"] and score_folds and one_class == score_folds and \
            numbers["majority_share"] < DEGENERATE_SHARE:
        return lead + (
            f"{name} is, in effect, a constant classifier: each of its {score_folds} fold "
            "classifiers answers one class for 90 % or more of its test blocks (not the same class "
            f"in every fold, so the pool looks varied), and its balanced accuracy ({bal:.3f}) sits "
            f"near the chance level of {cb:.3f}: it has learnt nothing it uses.")
    if numbers["degenerate"]:
        return lead + (
            f"{name} is, in effect, a constant classifier: it answers "
            f"**{numbers['majority_class']}** for {numbers['majority_share']:.0%} of the {units}. "
            f"Its accuracy ({numbers['accuracy']:.3f}) is what always answering one class scores "
            f"here (the best constant answer: {numbers['chance_constant']:.3f}), and its balanced "
            f"accuracy ({bal:.3f}) sits at the chance level of {cb:.3f}: it has learnt nothing it "
            "uses.")
    loss, k = numbers.get("train_loss", np.nan), numbers.get("n_classes")
    if k and not n_folds and np.isfinite(loss) and loss >= UNLEARNT_LOSS_SHARE * np.log(k):
        return lead + (
            f"{name} **did not learn**: its final training loss, {loss:.3f}, is still that of "
            f"guessing (ln {k} = {np.log(k):.3f}), and its balanced accuracy is {bal:.3f} against "
            f"a chance level of {cb:.3f}.")
    if interval == "clip":
        quoted = (f" (accuracy {numbers['accuracy']:.3f}, 95 % interval over test clips "
                  f"[{numbers['accuracy_clip_low']:.3f}, {numbers['accuracy_clip_high']:.3f}])")
    else:
        quoted = (f", 95 % interval over test events [{numbers['balanced_low']:.3f}, "
                  f"{numbers['balanced_high']:.3f}]" if numbers["interval_ok"] else "")
    where = f"balanced accuracy {bal:.3f}{quoted}, chance level {cb:.3f}"
    if not np.isfinite(numbers.get("p_above_chance", np.nan)):
        return lead + (f"{name} has a {where}; this run recorded no test against chance, so "
                       "none is claimed.")
    clause, p_above, p_below = _test_words(numbers, units)
    if p_above < LEVEL:
        return lead + f"{name} is above chance: {where} ({clause})."
    if p_below < LEVEL:
        return lead + (f"{name} is below chance: {where} (its answers go against the classes more "
                       f"often than by chance: {_p(p_below)} for as low a score; {clause}).")
    return lead + f"{name} cannot be told from chance: {where} ({clause})."


def diagnosis_sentence(diagnostics: Any) -> str:
    """What :func:`crowdnb.experiments.diagnostics_table` says of one experiment's networks, in words.

    One network: its final training loss against ln K, its training against
    its test accuracy, its most frequent answer, and its status. Several (the
    folds of a cross-validation): how many learnt, and each one that did not,
    with why.
    """
    rows = list(diagnostics.itertuples())
    if len(rows) == 1:
        r = rows[0]
        status = {"learnt": "it learnt, and does not overfit",
                  "overfits": "it learnt its training blocks far better than it does the test "
                              "blocks: it **overfits**",
                  "did not learn": f"it **did not learn** ({r.flags})"}[r.status]
        return (f"Diagnostics: a final training loss of {r.train_loss:.3f} against "
                f"ln K = {r.chance_loss:.3f} for guessing, a training accuracy of "
                f"{r.train_accuracy:.3f} against {r.test_accuracy:.3f} on the test blocks, and "
                f"{r.one_class_share:.0%} of the test blocks answered **{r.one_class}**: {status}.")
    bad = [r for r in rows if r.status != "learnt"]
    head = (f"Diagnostics of the {len(rows)} fold networks: "
            f"{sum(r.status == 'learnt' for r in rows)} learnt without overfitting")
    if not bad:
        return head + "."
    return head + "; " + "; ".join(
        f"{r.fold} **{r.status}** (final training loss {r.train_loss:.3f} against ln K = "
        f"{r.chance_loss:.3f}; {r.one_class_share:.0%} of its test blocks answered {r.one_class}"
        f"; training accuracy {r.train_accuracy:.3f}, test {r.test_accuracy:.3f})" for r in bad) + "."


def _count(k: int, n: int) -> str:
    return f"all {n}" if k == n else f"{k} of its {n}"


def comparison(first: Mapping[str, Any], second: Mapping[str, Any], *, first_name: str,
               second_name: str) -> str:
    """Two trainings scored on different test sets: their difference, described, not tested.

    Different test sets (a random and a clip split) cannot be compared by a
    paired test; overlapping intervals would say nothing either way. The
    sentence gives the difference and each side's own test, and says so.
    Trainings on the same test blocks are compared by
    :func:`paired_comparison`.
    """
    difference = first["balanced_accuracy"] - second["balanced_accuracy"]
    return (f"The balanced accuracy of {first_name} minus that of {second_name} is "
            f"{difference:+.3f}. The two were scored on different test blocks, so no paired test "
            "applies: this difference is a description, and each side's own test against chance "
            "is what this run can claim.")


def paired_comparison(effect: Mapping[str, Any], *, first_name: str, second_name: str) -> str:
    """Whether A scores higher than B on the same test blocks, by the paired permutation test.

    Parameters
    ----------
    effect : mapping
        :func:`crowdnb.experiments.paired_effect` of A and B: ``balanced_accuracy``
        (``difference``, ``low``, ``high``), ``p`` (two-sided), ``p_holm`` and
        ``holm_m`` where the page tests several, ``n_test``, ``n_events``,
        ``min_p``.
    """
    from .significance import LEVEL

    bal = effect["balanced_accuracy"]
    d = bal["difference"]
    holm = effect.get("p_holm")
    p = float(holm if holm is not None and np.isfinite(holm) else effect["p"])
    test = (f"paired permutation test over {int(effect['n_events'])} test events, {_p(p)}"
            + (f", Holm-adjusted over the {int(effect['holm_m'])} comparisons of this page"
               if holm is not None and np.isfinite(holm) else ""))
    where = (f"{d:+.3f} in balanced accuracy on the same {int(effect['n_test'])} test blocks "
             f"(95 % paired interval [{bal['low']:+.3f}, {bal['high']:+.3f}]; {test})")
    if p < LEVEL:
        relation = "higher than" if d > 0 else "lower than"
        return f"{first_name} scores {relation} {second_name}: {where}."
    could_not = (f" With these test events no difference could reach {LEVEL:g}."
                 if effect.get("min_p", 0.0) >= LEVEL else "")
    return f"{first_name} and {second_name} cannot be told apart: {where}.{could_not}"


def guard_gap_sentence(effect: Mapping[str, Any], plain: Mapping[str, Any],
                       guarded: Mapping[str, Any], *, dropped: int, trained: int) -> str:
    """What the random split's leakage is worth, in sentences chosen by the numbers.

    Parameters
    ----------
    effect : mapping
        :func:`crowdnb.experiments.guard_gap_effect` (plain minus guard gap).
    plain, guarded : mapping
        :func:`crowdnb.experiments.experiment_numbers` of the two networks.
    dropped, trained : int
        Training blocks the gap dropped, and those the plain split trains on.
    """
    bal = effect["balanced_accuracy"]
    d, low, high = bal["difference"], bal["low"], bal["high"]
    where = (f"{d:+.3f} in balanced accuracy (plain minus guard gap; 95 % {effect['method']}: "
             f"[{low:+.3f}, {high:+.3f}])")
    share = f"{dropped} of its {trained} training blocks ({dropped / trained:.0%})" if trained else \
        f"{dropped} training blocks"
    caveat = (f" The gap also costs the network {share}, so part of any difference is the smaller "
              "training set; and the interval covers the test set's sampling, not the training seed.")
    if plain["degenerate"] or guarded["degenerate"]:
        which = " and ".join(n for n, m in (("the plain network", plain), ("the guard-gap network",
                                                                           guarded)) if m["degenerate"])
        return (f"The difference is {where}, but {which} answers one class for nearly every block: "
                "a constant classifier gains nothing from shared sound, so this run cannot measure "
                "what the leakage is worth." + caveat)
    if "p" in effect:  # the paired permutation test decides; the interval describes
        from .significance import LEVEL

        p = effect.get("p_holm", effect["p"])
        adjusted = (f", Holm-adjusted over the {int(effect['holm_m'])} tests of this page"
                    if "p_holm" in effect else "")
        where = where[:-1] + f"; paired permutation test over test events, {_p(p)}{adjusted})"
        low, high = (1.0, 1.0) if p < LEVEL and d > 0 else (-1.0, -1.0) if p < LEVEL else (-1.0, 1.0)
    if low > 0:
        head = (f"Shared sound inflates the random split's score: {where}. Without the test blocks' "
                "neighbours in training the same network scores lower, so that much of the "
                "random split's figure is leakage, not recognition.")
    elif high < 0:
        head = (f"The guard-gap network scores higher than the plain one: {where}. No inflation by "
                "shared sound shows on this run.")
    else:
        head = (f"The guard gap changes the score by {where}, an interval that contains 0: on this "
                "run the effect of the shared sound cannot be told from the test set's noise.")
    optimistic = (" The interval resamples blocks, as if they were independent: it is the optimistic "
                  "one, and a real effect needs more test events to be shown.") if effect["optimistic"] else ""
    return head + optimistic + caveat


def ablation_findings(table: Any) -> str:
    """What each image ablation did to the random split, chosen by its numbers.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`crowdnb.ablations.ablation_table` (one row per point, the
        paper's image among them).

    Returns
    -------
    str
        Markdown: a count, then one bullet per variant. A variant is said to
        differ from the paper's image only when its paired interval of the
        difference excludes 0, or, unpaired (other blocks), when the two
        balanced-accuracy intervals do not overlap; a constant classifier
        (the paper's image's own network included) is called that.
    """
    paper = table[table["point"] == "paper"].iloc[0]
    rest = table[table["point"] != "paper"]
    lines, differing = [], []
    for row in rest.to_dict("records"):
        name = f"**{row['level']}** ({row['factor']})"
        numbers = (f"balanced accuracy {row['balanced_accuracy']:.3f} against "
                   f"{paper['balanced_accuracy']:.3f}, a difference of {row['difference']:+.3f}")
        if row["paired"]:
            how = ("paired 95 % interval, resampled block by block since a class has too few test "
                   "events: an optimistic one" if row["optimistic"] else
                   "paired 95 % interval over test events")
            interval = f"[{row['difference_low']:+.3f}, {row['difference_high']:+.3f}]"
            test = (f"paired permutation test over test events, "
                    f"{_p(float(row['p_holm']))} Holm-adjusted over the {int(row['holm_m'])} "
                    f"variant{'s' if int(row['holm_m']) != 1 else ''} tested; {how} {interval}")
            apart = bool(row["differs"])
            if apart:
                side = "higher" if row["difference"] > 0 else "lower"
                text = f"{name} scores {side} than the paper's image: {numbers} ({test})."
            else:
                text = f"{name} cannot be told from the paper's image: {numbers} ({test})."
                if row["min_p"] >= 0.05:
                    text += " With these test events no difference could reach 0.05."
        else:
            bounds = (row["balanced_low"], row["balanced_high"], paper["balanced_low"],
                      paper["balanced_high"])
            known = not any(v != v for v in bounds)  # NaN: too few test events for an interval
            apart = known and bool(bounds[0] > bounds[3] or bounds[1] < bounds[2])
            text = (f"{name}: {numbers}. It was tested on other blocks, so there is no paired "
                    "interval; " + ("the two balanced-accuracy intervals do not overlap." if apart
                                    else "the two balanced-accuracy intervals overlap: at this test "
                                    "size they cannot be told apart." if known else
                                    "with too few test events per class for intervals, the two "
                                    "cannot be told apart."))
        if row["degenerate"]:
            text += (f" Its network is a constant classifier: it answers one class for "
                     f"{row['majority_share']:.0%} of the test blocks.")
        if apart:
            differing.append(str(row["level"]))
        lines.append(f"- {text}")
    head = (f"{len(differing)} of the {len(rest)} variants "
            f"{'differs' if len(differing) == 1 else 'differ'} from the paper's image at this test "
            "size" + (f": {', '.join(differing)}." if differing else "."))
    if paper["degenerate"]:
        head += (f" The paper's image itself gives a constant classifier here (one class for "
                 f"{paper['majority_share']:.0%} of the test blocks): a variant can only be told "
                 "from it by learning something.")
    return head + "\n\n" + "\n".join(lines) + "\n"


def card_markdown(path: str | os.PathLike, *, title: str = "Dataset card") -> str:
    """A collection's dataset card as a collapsed admonition (MyST).

    The card's headings become bold lines: a heading inside a notebook's
    output would break the page's section structure.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: dataset card not found")
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            line = f"**{text}**" if text else ""
        lines.append(line)
    body = "\n".join(lines).strip()
    return f"::::{{admonition}} {title}\n:class: dropdown\n{body}\n::::\n"


def audio_excerpt(
    path: str | os.PathLike, *, seconds: float = 4.0, sr: int = 8000, offset_s: float | None = None
):
    """A short, low-rate excerpt of a clip to embed in the book.

    Parameters
    ----------
    path : path-like
        The audio file.
    seconds : float > 0
        Length of the excerpt, s.
    sr : int > 0
        Sample rate of the embedded excerpt, Hz: 8 kHz keeps a 4 s excerpt at
        about 64 kB, and is enough to hear the crowd (not its 20 kHz content).
    offset_s : float or None
        Start of the excerpt, s; None takes it from the middle of the clip.

    Returns
    -------
    IPython.display.Audio
        Embedded (the book needs no audio files).
    """
    from IPython.display import Audio

    from .audio import load_clip

    if not seconds > 0:
        raise ParameterError(f"seconds: an excerpt lasts more than 0 s, got {seconds!r}")
    if offset_s is not None and not offset_s >= 0:
        raise ParameterError(f"offset_s: the excerpt starts at 0 s or later, got {offset_s!r}")
    y, rate = load_clip(path, sr=sr)
    n = int(round(seconds * rate))
    start = max(0, (y.size - n) // 2) if offset_s is None else int(round(offset_s * rate))
    excerpt = y[start:start + n]
    if excerpt.size == 0:
        raise DataError(f"{path}: no audio at {start / rate:.1f} s for an excerpt")
    return Audio(excerpt, rate=rate, embed=True)
