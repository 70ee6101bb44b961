"""The early-exit baseline (section 6.4): the IC answers when its spike-count margin is
confident enough, else the FC; no fusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import InputError
from hwsim.fusion.posterior import _check_pair, accuracy_of_decisions, decide


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
    threshold = inf: FC only; 0: IC only. Thresholds are in spike counts.
    """

    threshold: np.ndarray  # (T,) float64, integer values or inf

    def decide(self, fc_cum: np.ndarray, ic_cum: np.ndarray) -> np.ndarray:
        """Decisions (N, T): class index, or -1 where the chosen head is tied."""
        n_t = np.asarray(fc_cum).shape[1]
        use_ic = ic_margin(ic_cum) >= self.threshold[None, :n_t]
        return np.where(use_ic, decide(np.asarray(ic_cum)), decide(np.asarray(fc_cum)))

    def accuracy(self, fc_cum: np.ndarray, ic_cum: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return accuracy_of_decisions(self.decide(fc_cum, ic_cum), labels)


def tune_early_exit(
    fc_cum: np.ndarray, ic_cum: np.ndarray, labels: np.ndarray, chunk: int = 256
) -> EarlyExit:
    """Per timestep, the margin threshold with the highest accuracy on these images.

    Candidates: every integer 0..t and inf (never the IC); ties go to the larger threshold
    (the FC is the reference, so the IC has to earn its use). Chunks of `chunk` timesteps keep
    memory at O(chunk T) beyond the inputs.
    """
    fc, ic = _check_pair(fc_cum, ic_cum)
    y = np.asarray(labels)
    n_img, n_t, _ = fc.shape
    thr = np.empty(n_t)
    for s in range(0, n_t, chunk):
        e = min(n_t, s + chunk)
        margin = ic_margin(ic[:, s:e])  # (N, L) in 0..t
        gain = (decide(ic[:, s:e]) == y[:, None]).astype(np.int64) - (
            decide(fc[:, s:e]) == y[:, None]
        )
        width = e + 1  # margins are <= t <= e
        rows = np.arange(e - s)[None, :]
        hist = np.bincount((rows * width + margin).ravel(), gain.ravel(), (e - s) * width)
        hist = hist.reshape(e - s, width)
        # acc(theta) - acc(inf) = sum of gains of images with margin >= theta
        tail = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
        for j in range(e - s):
            t = s + j + 1
            g = np.round(tail[j, : t + 1]).astype(np.int64)
            best = g.max()
            if best <= 0:
                thr[s + j] = np.inf
            else:
                thr[s + j] = float(np.flatnonzero(g == best)[-1])
    return EarlyExit(thr)
