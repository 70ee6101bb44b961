"""Where the tuned parameters come from (`TuneSource`), and K-fold cross-fitting on the test
images for data sets too small to spare a validation split (`cross_fit`)."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from hwsim.errors import InputError
from hwsim.fusion.posterior import CREDIT_DTYPE, _check_pair
from hwsim.fusion.tuning import (
    Correctness,
    FusionComparison,
    TuningConfig,
    comparison_of,
    correctness,
    tune_methods,
)
from hwsim.methods import image_ids_of


class TuneSource(StrEnum):
    """The images alpha(t), the LUT and the early-exit thresholds are tuned on.

    VALIDATION: the checkpoint's validation split, held out of training (the default).
    TRAIN: training images; biased, the network has learnt them (kept for checkpoints without
    a validation split). CROSS_FIT: K-fold cross-fitting on the test images (`cross_fit`).
    """

    VALIDATION = "validation"
    TRAIN = "train"
    CROSS_FIT = "cross-fit"


def fold_of(n_images: int, folds: int, seed: int = 0) -> np.ndarray:
    """Fold index (0..folds-1) of each image: a seeded random permutation dealt round-robin, so
    fold sizes differ by at most one."""
    if not 2 <= folds <= n_images:
        raise InputError(f"cross-fitting needs 2 <= folds <= {n_images} images, got {folds}")
    out = np.empty(n_images, np.int64)
    out[np.random.default_rng(seed).permutation(n_images)] = np.arange(n_images) % folds
    return out


def cross_fit(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    config: TuningConfig | None = None,
    folds: int = 5,
    seed: int = 0,
    image_ids: np.ndarray | None = None,
) -> FusionComparison:
    """Every method on all test images, each image decided with parameters tuned
    (`tune_methods`) on the other folds only, so no image is decided by parameters it helped
    choose. Accuracies are over all images; the shown tuning is fold 1's. Each image keeps its
    id (`image_ids`, default 0..N-1: the random tie rule draws the same for it whichever fold
    it is in)."""
    fc, ic = _check_pair(fc_cum, ic_cum)
    y = np.asarray(labels)
    ids = image_ids_of(len(y), image_ids)
    fold = fold_of(len(y), folds, seed)
    tunings, parts = [], []
    for k in range(folds):
        rest, mine = fold != k, fold == k
        tuning = tune_methods(fc[rest], ic[rest], y[rest], config, ids[rest])
        tunings.append(tuning)
        parts.append((mine, correctness(tuning, fc[mine], ic[mine], y[mine], ids[mine])))

    def assemble(pick) -> dict:
        keys = pick(parts[0][1]).keys()
        out = {m: np.zeros((len(y), fc.shape[1]), CREDIT_DTYPE) for m in keys}
        for mine, part in parts:
            for m in keys:
                out[m][mine] = pick(part)[m]
        return out

    decided = Correctness(
        assemble(lambda c: c.methods), assemble(lambda c: c.exact), assemble(lambda c: c.pwl)
    )
    return comparison_of(tunings[0], decided, folds=folds, fold_tunings=tuple(tunings))
