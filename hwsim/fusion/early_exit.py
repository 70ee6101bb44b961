"""The early-exit baseline (section 6.4): the IC answers when its spike-count margin is
confident enough, else the FC; no fusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import InputError
from hwsim.fusion.posterior import CREDIT_DTYPE, _check_pair, argmax_credit, decide
from hwsim.methods import Ties, credit_unit, image_ids_of, top_credit


def ic_margin(ic_cum: np.ndarray) -> np.ndarray:
    """IC confidence: top-1 minus top-2 spike count per image and timestep, (N, T) int64.

    0 where the IC's top class is tied (the IC then has no decision)."""
    ic = np.asarray(ic_cum)
    if ic.shape[-1] < 2:
        raise InputError("early exit needs at least 2 classes")
    top2 = np.partition(ic, ic.shape[-1] - 2, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]).astype(np.int64)


@dataclass(frozen=True)
class EarlyExit:
    """Confidence-switched IC/FC classifier (the early-exit baseline of section 6.4).

    At timestep t an image takes the IC's decision if the IC's count margin (`ic_margin`) is
    >= threshold[t - 1], else the FC's; the other head's spikes are discarded (no fusion).
    threshold = inf: FC only; 0: IC only (a tied IC included). Thresholds are in spike counts.
    """

    threshold: np.ndarray  # (T,) float64, integer values or inf

    def uses_ic(self, ic_cum: np.ndarray) -> np.ndarray:
        """Whether each image takes the IC's answer at each step: (N, T) bool."""
        n_t = np.asarray(ic_cum).shape[1]
        return ic_margin(ic_cum) >= self.threshold[None, :n_t]

    def decide(self, fc_cum: np.ndarray, ic_cum: np.ndarray) -> np.ndarray:
        """Decisions (N, T): class index, or -1 where the chosen head is tied."""
        use_ic = self.uses_ic(ic_cum)
        return np.where(use_ic, decide(np.asarray(ic_cum)), decide(np.asarray(fc_cum)))

    def credit(
        self,
        fc_cum: np.ndarray,
        ic_cum: np.ndarray,
        labels: np.ndarray,
        ties: Ties | None = None,
        image_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each image's credit at each step: the chosen head's argmax credited by `ties`
        (`argmax_credit`, default fair): (N, T) `CREDIT_DTYPE`."""
        use_ic = self.uses_ic(ic_cum)
        on_ic = argmax_credit(ic_cum, labels, ties, image_ids)
        on_fc = argmax_credit(fc_cum, labels, ties, image_ids)
        return np.where(use_ic, on_ic, on_fc).astype(CREDIT_DTYPE)

    def accuracy(
        self,
        fc_cum: np.ndarray,
        ic_cum: np.ndarray,
        labels: np.ndarray,
        ties: Ties | None = None,
    ) -> np.ndarray:
        """Accuracy (T,): the mean credit over the images."""
        return self.credit(fc_cum, ic_cum, labels, ties).mean(axis=0, dtype=np.float64)


def tune_early_exit(
    fc_cum: np.ndarray,
    ic_cum: np.ndarray,
    labels: np.ndarray,
    ties: Ties | None = None,
    image_ids: np.ndarray | None = None,
    chunk: int = 256,
) -> EarlyExit:
    """Per timestep, the margin threshold with the highest accuracy on these images, ties
    credited by `ties` (default fair) in exact integer units (`credit_unit`).

    Candidates: every integer 0..t and inf (never the IC); ties go to the larger threshold
    (the FC is the reference, so the IC has to earn its use). Chunks of `chunk` timesteps keep
    memory at O(chunk T) beyond the inputs.
    """
    ties = Ties() if ties is None else ties
    fc, ic = _check_pair(fc_cum, ic_cum)
    y = np.asarray(labels)
    n_img, n_t, n_c = fc.shape
    ids = image_ids_of(n_img, image_ids)
    unit = credit_unit(n_c)
    thr = np.empty(n_t)
    for s in range(0, n_t, chunk):
        e = min(n_t, s + chunk)
        margin = ic_margin(ic[:, s:e])  # (N, L) in 0..t

        def units(x: np.ndarray, s: int = s, e: int = e) -> np.ndarray:
            top = x[:, s:e] == x[:, s:e].max(axis=-1, keepdims=True)
            return top_credit(top, y, ties, ids, unit, first_step=s + 1)

        gain = units(ic) - units(fc)  # integer-valued float64: exact sums
        width = e + 1  # margins are <= t <= e
        rows = np.arange(e - s)[None, :]
        hist = np.bincount((rows * width + margin).ravel(), gain.ravel(), (e - s) * width)
        hist = hist.reshape(e - s, width)
        # acc(theta) - acc(inf) = sum of gains of images with margin >= theta
        tail = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
        for j in range(e - s):
            t = s + j + 1
            g = tail[j, : t + 1]
            best = g.max()
            if best <= 0:
                thr[s + j] = np.inf
            else:
                thr[s + j] = float(np.flatnonzero(g == best)[-1])
    return EarlyExit(thr)
