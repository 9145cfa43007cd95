"""The paper's claims, one by one: its value, this run's value with its test, and a verdict.

Each claim of Franzoni & Biondi is a :class:`Claim`: what the paper says,
its value, and a rule that reads a run's results and chooses one of
:data:`VERDICTS` with its reason. The rules are written down here, once, so
that a reader (and a test) can check them:

- a number of the paper (1.0, 0.72, 0.53) is **reproduced** when this run's
  95 % interval holds it and the network is above chance by the permutation
  test; it **matches only numerically** when the interval holds it but the
  network is not above chance or did not learn (a constant classifier can
  score 0.53 on two balanced classes); it is **not reproduced** when the
  interval excludes it; it is **not testable here** when this run has no
  interval for it;
- a comparison ("only slightly lower", "free from overfitting", the
  overlap, transfer learning) is decided by its own test or diagnostic,
  stated in the reason;
- every p-value of the table is Holm-adjusted over the table's tests.

:func:`gather_evidence` reads a run; :func:`claim_table` applies the rules;
:func:`claims_paragraph` words the table for the introduction;
:func:`results_findings` words the results chapter's findings.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from .evaluation import OVERFIT_GAP, diagnose
from .experiments import EXPERIMENTS, experiment_numbers, guard_gap_effect, metrics_path
from .files import read_json, read_table
from .significance import LEVEL, format_p as _p, holm

__all__ = ["VERDICTS", "Claim", "CLAIMS", "SLIGHTLY", "gather_evidence", "claim_table",
           "claims_paragraph", "results_findings"]

#: The verdicts a claim can get.
VERDICTS = ("reproduced", "not reproduced", "matches only numerically", "not testable here")
#: How much lower "only slightly lower" may be, in accuracy.
SLIGHTLY = 0.10


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and the rule that judges it on a run.

    Attributes
    ----------
    key : str
        Its name in :data:`CLAIMS`.
    claim : str
        The claim, in a few words.
    paper_says : str
        The paper's words.
    paper_value : str
        The paper's value, as the table shows it.
    judge : callable
        ``judge(evidence) -> (this_run, verdict, why)``.
    """

    key: str
    claim: str
    paper_says: str
    paper_value: str
    judge: Callable[[Mapping[str, Any]], tuple[str, str, str]]


# ---------------------------------------------------------------------------
# Reading a run


def gather_evidence(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What the claims are judged on: every experiment's metrics and the extra studies' tables.

    Returns
    -------
    dict
        ``metrics`` (by experiment key, those that ran), ``numbers``
        (:func:`crowdnb.experiments.experiment_numbers` of each),
        ``histories`` (the training curves of the networks with one),
        ``guard_gap`` (the paired effect, or None), ``pretraining`` (chapter
        12's paired effects, or None), ``ablations`` (chapter 9's table, or
        None), and ``p_holm`` (every test of the table, Holm-adjusted).
    """
    run_dir = Path(run_dir)
    metrics = {key: read_json(metrics_path(run_dir, e)) for key, e in EXPERIMENTS.items()
               if metrics_path(run_dir, e).is_file()}
    histories = {}
    for key in metrics:
        path = metrics_path(run_dir, EXPERIMENTS[key]).parent / "history.csv"
        if path.is_file():
            histories[key] = read_table(path)
    guard = None
    if {"emotions_random", "emotions_random_guard"} <= set(metrics):
        folders = [metrics_path(run_dir, EXPERIMENTS[k]).parent
                   for k in ("emotions_random", "emotions_random_guard")]
        guard = guard_gap_effect(*(read_table(f / "predictions.csv") for f in folders))
    optional = {name: run_dir / stage / file if (run_dir / stage / file).is_file() else None
                for name, stage, file in (("pretraining", "12_pretraining", "effects.csv"),
                                          ("ablations", "09_ablations", "ablations.csv"))}
    evidence = {"metrics": metrics,
                "numbers": {k: experiment_numbers(m) for k, m in metrics.items()},
                "histories": histories, "guard_gap": guard,
                **{k: read_table(v) if v else None for k, v in optional.items()}}
    evidence["p_holm"] = _holm_family(evidence)
    return evidence


def _transfer_row(evidence: Mapping[str, Any]) -> dict[str, Any] | None:
    """Chapter 12's ImageNet-minus-random-weights row of the emotions' random split, if any.

    The cleanest that ran: the chapters' network fine-tuned against the same
    network trained from random weights; else its frozen ImageNet features
    against its frozen random ones (same network, same classifier); else the
    chapters' network against AlexNet from random weights (architectures differ).
    """
    effects = evidence.get("pretraining")
    if effects is None or not len(effects):
        return None
    rows = effects[effects["key"] == "emotions_random"]
    second = rows["second"].astype(str)
    first = rows["first"].astype(str)
    for chosen in (rows[second.str.endswith("from random weights") & ~second.str.startswith("AlexNet")],
                   rows[second.str.contains("frozen random weights")
                        & first.str.endswith("frozen + logistic regression")],
                   rows[second.str.startswith("AlexNet from random weights")]):
        if len(chosen):
            return chosen.iloc[0].to_dict()
    return None


def _overlap_row(evidence: Mapping[str, Any]) -> dict[str, Any] | None:
    table = evidence.get("ablations")
    if table is None or "no_overlap" not in set(table["point"]):
        return None
    return table[table["point"] == "no_overlap"].iloc[0].to_dict()


def _holm_family(evidence: Mapping[str, Any]) -> dict[str, float]:
    """Every p-value the table's verdicts use, adjusted together."""
    raw = {f"{k} above chance": n["p_above_chance"] for k, n in evidence["numbers"].items()}
    if evidence["guard_gap"] is not None:
        raw["guard gap"] = evidence["guard_gap"]["p"]
    transfer = _transfer_row(evidence)
    if transfer is not None:
        raw["transfer"] = transfer["p"]
    names = [k for k, v in raw.items() if v is not None and np.isfinite(v)]
    return dict(zip(names, holm([raw[k] for k in names])))


# ---------------------------------------------------------------------------
# The rules


def _learnt(n: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a network (or every fold network) learnt, and if not, why in words."""
    if n["n_folds"] and n["folds_not_learnt"]:
        return False, f"{n['folds_not_learnt']} of its {n['n_folds']} fold networks did not learn"
    found = diagnose(n)
    if not found["learnt"]:
        return False, f"its network {' and '.join(found['flags'])}"
    return True, ""


def _interval(key: str, n: Mapping[str, Any]) -> tuple[float, float, str] | None:
    """The accuracy interval that answers the experiment's question, or None."""
    if EXPERIMENTS[key].protocol == "clip":
        if not n["interval_ok"]:
            return None
        return n["accuracy_event_low"], n["accuracy_event_high"], "over test events (new crowds)"
    return n["accuracy_clip_low"], n["accuracy_clip_high"], "over test clips (new moments of these crowds)"


def _accuracy_claim(key: str, paper: float) -> Callable[[Mapping[str, Any]], tuple[str, str, str]]:
    def judge(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
        n = evidence["numbers"].get(key)
        if n is None:
            return "not run", "not testable here", f"this run has no {EXPERIMENTS[key].title}"
        p = evidence["p_holm"].get(f"{key} above chance", math.nan)
        interval = _interval(key, n)
        learnt, why_not = _learnt(n)
        this = f"accuracy {n['accuracy']:.3f}"
        if interval:
            this += f" (95 % interval {interval[2]}: [{interval[0]:.3f}, {interval[1]:.3f}])"
        this += (f"; balanced {n['balanced_accuracy']:.3f} against chance {n['chance_balanced']:.3f}"
                 f", permutation test {_p(p)}")
        if interval is None:
            return this, "not testable here", (f"{n['interval_note']}: no interval to set "
                                               f"{paper:.2f} against")
        holds = interval[0] - 0.005 <= paper <= interval[1] + 0.005
        above = p < LEVEL
        if holds and learnt and above:
            return this, "reproduced", (f"the interval holds {paper:.2f}, and the network is above "
                                        "chance")
        if holds:
            reason = why_not if not learnt else "the network cannot be told from chance"
            return this, "matches only numerically", (f"the interval holds {paper:.2f}, but {reason}: "
                                                      "the number is what chance gives here")
        side = "below" if interval[1] < paper else "above"
        extra = (f"; {why_not}" if not learnt else
                 "" if above else "; and the network cannot be told from chance")
        return this, "not reproduced", f"the interval lies {side} {paper:.2f}{extra}"
    return judge


def _three_epochs(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
    history = evidence["histories"].get("emotions_random")
    if history is None or not len(history) or history["epoch"].max() < 4:
        return "no training curve", "not testable here", "the random split's network has no curve past epoch 3"
    at3 = history[history["epoch"] <= 3].iloc[-1]
    # the same validation images at both ends (the last row may be the whole test set)
    last = history[history["n_val"] == at3["n_val"]].iloc[-1]
    one = 1.0 / max(int(last["n_val"]), 1)
    this = (f"validation accuracy {at3['val_accuracy']:.3f} at the end of epoch 3, "
            f"{last['val_accuracy']:.3f} at epoch {int(last['epoch'])} "
            f"({int(last['n_val'])} validation images: one image is {one:.3f})")
    gained = last["val_accuracy"] - at3["val_accuracy"]
    if at3["val_accuracy"] >= 1.0 - one - 1e-9 and gained <= one + 1e-9:
        return this, "reproduced", "within one image of perfect by epoch 3, and no gain after it"
    if gained > one + 1e-9:
        return this, "not reproduced", f"the network gained {gained:+.3f} after epoch 3"
    return this, "not reproduced", (f"nothing was gained after epoch 3, but the accuracy there is "
                                    f"{at3['val_accuracy']:.3f}, not perfect")


def _slightly_lower(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
    numbers = evidence["numbers"]
    if not {"emotions_random", "emotions_clip"} <= set(numbers):
        return "not run", "not testable here", "one of the two emotion networks did not run"
    rnd, clip = numbers["emotions_random"], numbers["emotions_clip"]
    drop = rnd["accuracy"] - clip["accuracy"]
    this = f"{rnd['accuracy']:.3f} (random) and {clip['accuracy']:.3f} (clip): {drop:+.3f} lower"
    learnt, why_not = _learnt(clip)
    interval = _interval("emotions_clip", clip)
    if interval is None:
        return this, "not testable here", f"the clip split has no interval ({clip['interval_note']})"
    this += f"; clip split's 95 % interval over test events [{interval[0]:.3f}, {interval[1]:.3f}]"
    floor = rnd["accuracy"] - SLIGHTLY
    if interval[1] < floor:
        return this, "not reproduced", (f"the clip split's interval lies below {floor:.3f}, more "
                                        f"than {SLIGHTLY:.2f} (our reading of 'slightly') under the "
                                        "random split" + (f"; {why_not}" if not learnt else ""))
    if interval[0] >= floor and learnt:
        return this, "reproduced", f"the clip split's interval lies within {SLIGHTLY:.2f} of the random split"
    return this, "not testable here", (f"the clip split's interval reaches both sides of {floor:.3f}: "
                                       "this test set cannot say whether the drop is slight"
                                       + (f"; {why_not}" if not learnt else ""))


def _free_from_overfitting(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
    m = evidence["metrics"].get("emotions_clip")
    if m is None:
        return "not run", "not testable here", "the clip split did not run"
    n = evidence["numbers"]["emotions_clip"]
    units = [{**f, "n_classes": n["n_classes"]} for f in m.get("folds") or []] or [n]
    found = [diagnose(u) for u in units]
    gaps = [f["train_accuracy"] - f["test_accuracy"] for f in found]
    this = (f"training minus test accuracy {np.mean(gaps):+.3f} (mean over {len(found)} "
            f"network{'s' if len(found) > 1 else ''}; largest {max(gaps):+.3f})")
    unlearnt = sum(not f["learnt"] for f in found)
    overfit = sum(f["status"] == "overfits" for f in found)
    if overfit:
        return this, "not reproduced", (f"{overfit} of {len(found)} networks fit their training "
                                        f"blocks {OVERFIT_GAP:.2f} or more better than their test blocks")
    if unlearnt:
        return this, "not testable here", (f"{unlearnt} of {len(found)} networks did not learn: a "
                                           "network that learnt nothing cannot overfit, nor show it does not")
    return this, "reproduced", f"every network's gap is under {OVERFIT_GAP:.2f}"


def _more_consistent(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
    return ("-", "not testable here", "the paper does not say what it measured; its curves are not "
            "available, and 'consistent' has no number to test")


def _leakage(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
    effect = evidence["guard_gap"]
    if effect is None:
        return "not run", "not testable here", ("the guard-gap network did not run "
                                                "(04_random_split_training: guard_gap)")
    bal = effect["balanced_accuracy"]
    p = evidence["p_holm"]["guard gap"]
    this = (f"plain minus guard gap {bal['difference']:+.3f} in balanced accuracy on the same "
            f"{effect['n_test']} test blocks, paired permutation test {_p(p)}")
    guard = evidence["numbers"].get("emotions_random_guard")
    if guard is not None and not _learnt(guard)[0]:
        return this, "not testable here", "the guard-gap network did not learn"
    if p < LEVEL and bal["difference"] > 0:
        return this, "reproduced", "shared sound raises the random split's score"
    if effect["min_p"] >= LEVEL:
        return this, "not testable here", "too few test events for the paired test to succeed"
    return this, "not reproduced", "no inflation by shared sound shows at this test size"


def _overlap(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
    row = _overlap_row(evidence)
    if row is None:
        return "not run", "not testable here", ("the ablation sweep (params/sweeps/ablations.yaml) "
                                                "did not run for this build")
    this = (f"no overlap minus the paper's 1 s overlap: {row['difference']:+.3f} in balanced "
            f"accuracy [{row['difference_low']:+.3f}, {row['difference_high']:+.3f}]")
    if row["differs"] and row["difference"] < 0:
        return this, "reproduced", "less overlap scores lower, by the ablation's paired interval"
    return this, "not reproduced", "less overlap does not score lower here"


def _transfer(evidence: Mapping[str, Any]) -> tuple[str, str, str]:
    row = _transfer_row(evidence)
    if row is None:
        return "not run", "not testable here", "no network was trained from random weights"
    p = evidence["p_holm"]["transfer"]
    this = (f"{row['first']} minus {row['second']}: {row['difference']:+.3f} in balanced accuracy "
            f"on the same {int(row['n_test'])} test blocks, paired permutation test {_p(p)}")
    caveat = ("; the two networks differ in architecture as well as in pretraining"
              if str(row["second"]).startswith("AlexNet") and not str(row["first"]).startswith("AlexNet")
              else "")
    if p < LEVEL and row["difference"] > 0:
        return this, "reproduced", "pretrained weights score higher" + caveat
    if row["min_p"] >= LEVEL:
        return this, "not testable here", "too few test events for the paired test to succeed"
    return this, "not reproduced", "pretrained weights do not score higher here" + caveat


CLAIMS: dict[str, Claim] = {c.key: c for c in (
    Claim("random_perfect", "random split: perfect accuracy",
          "three training epochs are sufficient to achieve perfect accuracy, i.e., 1", "1.0",
          _accuracy_claim("emotions_random", 1.0)),
    Claim("three_epochs", "three epochs suffice",
          "three training epochs are sufficient ... No substantial improvement is obtained with "
          "more epochs", "3 epochs", _three_epochs),
    Claim("clip_slightly_lower", "clip split: only slightly lower",
          "performances are only slightly lower", "slightly lower", _slightly_lower),
    Claim("clip_consistent", "clip split: more consistent", "although more consistent",
          "more consistent", _more_consistent),
    Claim("clip_no_overfitting", "clip split: free from overfitting", "and free from overfitting",
          "no overfitting", _free_from_overfitting),
    Claim("leakage", "the random split is weak for overfitting detection",
          "the accuracy of the results may be influenced by ... the same part of the clip",
          "inflated", _leakage),
    Claim("overlap", "a smaller overlap gave scarce results",
          "A smaller overlap has been tested with scarce results concerning accuracy",
          "lower", _overlap),
    Claim("goal_random", "goal / no goal, random split", "only around 0.72 accuracy for the "
          "random approach", "0.72", _accuracy_claim("goal_random", 0.72)),
    Claim("goal_clip", "goal / no goal, clip split", "0.53 accuracy for the manual approach",
          "0.53", _accuracy_claim("goal_clip", 0.53)),
    Claim("transfer", "transfer learning makes it work",
          "we chose a transfer learning approach ... to leverage a pretrained network",
          "pretrained helps", _transfer),
)}


def claim_table(evidence: Mapping[str, Any],
                claims: Mapping[str, Claim] | None = None) -> pd.DataFrame:
    """Every claim judged: ``claim``, ``paper says``, ``paper``, ``this run``, ``verdict``, ``why``."""
    rows = []
    for claim in (CLAIMS if claims is None else claims).values():
        this, verdict, why = claim.judge(evidence)
        if verdict not in VERDICTS:
            raise ValueError(f"claim {claim.key}: unknown verdict {verdict!r}")
        rows.append({"key": claim.key, "claim": claim.claim, "paper says": claim.paper_says,
                     "paper": claim.paper_value, "this run": this, "verdict": verdict, "why": why})
    return pd.DataFrame(rows)


def claims_paragraph(table: pd.DataFrame) -> str:
    """The verdict table in one paragraph (Markdown), for the introduction."""
    counts = table["verdict"].value_counts()
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts.get(v, 0)]
    lists = []
    for v in VERDICTS:
        names = table.loc[table["verdict"] == v, "claim"].tolist()
        if names:
            lists.append(f"**{v[0].upper() + v[1:]}**: " + "; ".join(names))
    return (f"Of the paper's {len(table)} claims this run judges, "
            + ", ".join(parts) + ". " + ". ".join(lists) + ".")


def results_findings(table: pd.DataFrame, evidence: Mapping[str, Any],
                     metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The results chapter's sentences, each chosen by this run's numbers.

    Parameters
    ----------
    table : pd.DataFrame
        :func:`crowdnb.experiments.results_table` of the run.
    evidence : mapping
        :func:`gather_evidence` of the run (its Holm-adjusted p-values).
    metrics : mapping
        Each experiment's metrics that ran, by key.

    Returns
    -------
    dict
        ``findings`` (a Markdown item per experiment: its accuracy, the paper's
        value and the verdict of its test; the guard gap's effect where it ran;
        random against clip split per task), ``leak_text`` and ``balance_text``.
    """
    from .report import comparison, guard_gap_sentence, verdict

    m = len(evidence["p_holm"])
    numbers = table.set_index("key").to_dict("index")
    for key, row in numbers.items():
        if f"{key} above chance" in evidence["p_holm"]:
            row.update(p_holm=evidence["p_holm"][f"{key} above chance"], holm_m=m)
    findings = []
    for row in table.to_dict("records"):
        experiment = EXPERIMENTS[row["key"]]
        paper = (f"the paper: {row['paper']:g}" if row["paper"] == row["paper"]
                 else f"the paper: \"{experiment.paper_says}\"")
        findings.append(f"- **{row['experiment'][0].upper() + row['experiment'][1:]}**: accuracy "
                        f"{row['accuracy']:.3f}; {paper}. "
                        + verdict(numbers[row["key"]], name="Its network",
                                  interval="event" if experiment.protocol == "clip" else "clip"))
    guard = EXPERIMENTS["emotions_random_guard"]
    if guard.key in metrics:
        effect = {**evidence["guard_gap"], "p_holm": evidence["p_holm"]["guard gap"], "holm_m": m}
        findings.append("- **What the random split's leakage is worth** (chapter 4): "
                        + guard_gap_sentence(
                            effect, numbers["emotions_random"], numbers[guard.key],
                            dropped=metrics[guard.key]["protocol"]["guard_gap"]["train_blocks_dropped"],
                            trained=numbers["emotions_random"]["n_train"]))
        leak_text = ("The guard-gap network of chapter 4 measures the first part directly, on the "
                     "same test blocks; see its line above.")
    else:
        leak_text = ("This run did not train the guard-gap network of chapter 4 (guard_gap: false), "
                     "which would measure the first part directly.")
    for task in ("emotions", "goal"):
        findings.append(f"- **{task.replace('goal', 'Goal / no goal').replace('emotions', 'Emotions')}, "
                        "random split against clip split**: "
                        + comparison(numbers[f"{task}_random"], numbers[f"{task}_clip"],
                                     first_name="the random split", second_name="the clip split"))
    balanced = bool((table["chance_constant"] - table["chance_balanced"]).abs().max() < 0.01)
    balance_text = (
        "In this run every test set was balanced in blocks, so accuracy and balanced accuracy nearly "
        "coincide and a constant answer scores 1/K in both." if balanced else
        "In this run some test sets have unequal classes (the constant-chance column differs from 1/K "
        "there), so a constant answer can score well above 1/K in accuracy.")
    return {"findings": "\n".join(findings) + "\n", "leak_text": leak_text,
            "balance_text": balance_text}
