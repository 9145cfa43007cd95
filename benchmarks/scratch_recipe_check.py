"""Does the from-scratch recipe learn? Checked on the training data only.

The recipe (crowdnb.config.TrainRecipe.from_scratch) is argued a priori; this
script checks, without touching any test block, that it trains: it splits the
emotion random split's *training* blocks of a run into an inner training and
an inner validation set (80/20 at random), trains AlexNet from
random weights with the paper's recipe and with the from-scratch one, and
prints the inner validation accuracy, balanced accuracy and the share of the
most frequent answer.

    python benchmarks/scratch_recipe_check.py runs/default
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from crowdnb.config import TrainRecipe
from crowdnb.experiments import EXPERIMENTS, emotion_images, split_for
from crowdnb.splits import random_split
from crowdnb.train import train_model

warnings.filterwarnings("ignore", message="weights='imagenet'")


def main(run_dir: str) -> None:
    blocks, image_root, preprocessing = emotion_images(run_dir)
    train, _ = split_for(EXPERIMENTS["emotions_random"], blocks, test_fraction=0.2, seed=0)
    inner_train, inner_val = random_split(train, test_fraction=0.2, seed=1)
    recipe = TrainRecipe(validate_every=None)
    # offline, "imagenet" falls back: to the paper's recipe, or to the from-scratch one
    for missing in ("fallback", "scratch"):
        result = train_model(inner_train, inner_val, image_root=image_root, recipe=recipe,
                             weights="imagenet", on_missing_weights=missing, seed=0,
                             preprocessing=preprocessing, progress=False)
        m = result.metrics
        if m["pretrained"]:
            sys.exit("the ImageNet weights are present: this check is for the offline case")
        name = {"fallback": "paper recipe", "scratch": "from-scratch recipe"}[missing]
        print(f"{name:20s} lr {m['params']['lr']:.3g}: inner validation accuracy {m['accuracy']:.3f}, "
              f"balanced {m['balanced_accuracy']:.3f}, most frequent answer "
              f"{m['predicted_majority']['share']:.0%}, final training loss "
              f"{m['final_train_loss']:.3f} ({m['training']['time_s']:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path("runs") / "default"))
