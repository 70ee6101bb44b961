"""Input codings of the IF engine: direct (analog), Poisson rate coding, weighted spikes.

A coding decides two things: what layer 0 receives at timestep t (the analog image, or a map of
signed unit spikes), and the *phase weight* omega_j(t) of every spiking layer j at t. Every
engine backend and the test oracle take both from here, so they cannot disagree on them.

The IF update of layer j at timestep t (0-based) under any coding is

    I_j(t) = sum_g omega_src(g)(t-1) * (W_g s_src(g)(t)) + omega_j(t) * beta_j
    V_j   <- V_j + I_j(t);  s_j = [V_j >= omega_j(t) theta];  V_j <- V_j - omega_j(t) theta s_j

where g runs over the weight layers into j, s_src(t) are the spikes the source emits at t (it
fired them at t-1), omega of the network input is `input_omega(t)` (it is not delayed) and
beta_j is the layer's bias (times `bias_scale`). A layer with omega_j(t) = 0 is idle at t: its
membrane is not updated and it does not fire. Direct and Poisson coding have omega = 1 always,
which is the plain IF neuron of the BayesianSpikeFusion code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from hwsim.errors import InputError


class InputCoding(ABC):
    """How the image enters the network, and the phase weights of every layer."""

    analog: bool = False
    """True: the image itself is layer 0's input current every step (no input spikes)."""
    phased: bool = False
    """True: omega may differ from 1 (weighted spikes); False: omega = 1 at every step."""

    @property
    def bias_scale(self) -> float:
        """Factor applied to every bias (beta_j = bias_scale * b_j), before rounding to float32."""
        return 1.0

    def input_spikes(
        self, images: np.ndarray, image_ids: np.ndarray, t0: int, t1: int
    ) -> np.ndarray:
        """Input spikes of timesteps t0..t1-1: int8 (B, t1-t0, C, H, W) in {-1, 0, 1}.

        `images` (B, C, H, W) float; `image_ids` (B,) int64, the index of each image in the
        simulated set, so random codings do not depend on how images are batched.
        """
        raise NotImplementedError(f"{type(self).__name__} feeds the analog image")

    def input_omega(self, t: np.ndarray) -> np.ndarray:
        """Weight of the input spikes at timesteps `t` (float32)."""
        return np.ones(len(t), np.float32)

    def layer_omega(self, t: np.ndarray, depth: int, output: bool) -> np.ndarray:
        """omega_j(t) of a layer at `depth` (float32); `output`: a classifier's last layer."""
        return np.ones(len(t), np.float32)

    @abstractmethod
    def describe(self) -> str:
        """A short human-readable name with the parameters."""


@dataclass(frozen=True)
class DirectCoding(InputCoding):
    """Direct (analog) coding: the image is layer 0's input current at every timestep."""

    analog = True

    def describe(self) -> str:
        return "direct"


def _uniform(seed: int, image_ids: np.ndarray, t: np.ndarray, n_pixels: int) -> np.ndarray:
    """Counter-based uniforms in [0, 1): (B, T, n_pixels) float64 with 24-bit resolution.

    A splitmix64 hash of (seed, image id, timestep, pixel): the same draw whatever the batch size,
    time chunking or backend.
    """
    with np.errstate(over="ignore"):
        key = (
            np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
            + image_ids.astype(np.uint64)[:, None, None] * np.uint64(0xD1B54A32D192ED03)
            + t.astype(np.uint64)[None, :, None] * np.uint64(0xABC98388FB8FAC03)
            + np.arange(n_pixels, dtype=np.uint64)[None, None, :] * np.uint64(0x8CB92BA72F3D8DD7)
        )
        z = key + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


@dataclass(frozen=True)
class PoissonCoding(InputCoding):
    """Poisson rate coding (Han & Roy / weighted-spikes paper eq. 5), seeded and reproducible.

    Pixel value x emits a spike of sign(x) at each timestep with probability min(|x|, 1),
    independently per pixel and step, so the expected input current is x for |x| <= 1: the
    converted network sees on average what it was normalised for. Datasets in [0, 1] (MNIST,
    synthetic) give the usual unsigned rate code; mean/std-normalised inputs (CIFAR) give signed
    spikes, and their values beyond +-1 saturate at one spike per step (clipped).
    """

    seed: int = 0

    def input_spikes(
        self, images: np.ndarray, image_ids: np.ndarray, t0: int, t1: int
    ) -> np.ndarray:
        b = len(images)
        flat = images.reshape(b, 1, -1).astype(np.float64)
        u = _uniform(self.seed, np.asarray(image_ids), np.arange(t0, t1), flat.shape[2])
        fire = u < np.minimum(np.abs(flat), 1.0)
        s = (fire * np.sign(flat)).astype(np.int8)
        return s.reshape(b, t1 - t0, *images.shape[1:])

    def describe(self) -> str:
        return f"poisson(seed={self.seed})"


@dataclass(frozen=True)
class WeightedSpikeCoding(InputCoding):
    """Weighted spikes (Kim et al., Neurocomputing 2018, sections 4-5), K phases per period.

    Phase k = 0..K-1 of a period weighs omega = 2^-(k+1) (eq. 6). Input: |x| is quantised to K
    fractional bits, a = floor(min(|x|, 1 - 2^-K) 2^K) / 2^K, and bit k of a (MSB first) is the
    input spike of phase k, with the sign of x (the paper's inputs are unsigned; a sensor's 8-bit
    pixel p / 255 gives exactly the bits of p for K = 8 and its upper K bits for K < 8).
    Neurons (eqs. 8-10): I = omega (W s + beta), fire when V >= omega theta, subtract omega theta;
    beta = b / (1 - 2^-K) so that one period integrates exactly b. A spike keeps the weight of
    the phase in which it was fired: each layer runs its phase clock delayed by its depth (the
    number of one-step delays between the input and it), so in a plain chain every input of a
    layer carries the layer's own phase, as in the paper's synchronous model; layer j is idle
    until its first input arrives (t < depth_j). The paper's residual join sums two paths of
    equal phase; here the skip path arrives one step ahead of conv2's, so the join weighs each
    input by its source's phase (the general form of eq. 8). Input current skipping (section
    5.1): the last layer of every classifier ignores its input for the first `skip_periods`
    periods after its first input arrives (idle: no membrane update, no spikes).
    Classifiers still fire spikes (fusion counts them); the paper's readout of the output
    membrane potential is not modelled.
    """

    phases: int = 8
    skip_periods: int = 0
    phased = True

    def __post_init__(self) -> None:
        if not 1 <= self.phases <= 16:
            raise InputError(f"phases must be in 1..16, got {self.phases}")
        if self.skip_periods < 0:
            raise InputError(f"skip_periods must be >= 0, got {self.skip_periods}")

    @property
    def bias_scale(self) -> float:
        return 1.0 / (1.0 - 2.0**-self.phases)

    def _omega(self, phase: np.ndarray) -> np.ndarray:
        return np.ldexp(np.float32(1.0), -(1 + phase % self.phases)).astype(np.float32)

    def input_spikes(
        self, images: np.ndarray, image_ids: np.ndarray, t0: int, t1: int
    ) -> np.ndarray:
        k = self.phases
        x = images.astype(np.float64)
        a = np.floor(np.minimum(np.abs(x) * 2.0**k, 2.0**k - 1)).astype(np.int64)
        phase = np.arange(t0, t1) % k
        bits = (a[:, None] >> (k - 1 - phase).reshape(1, -1, *([1] * (x.ndim - 1)))) & 1
        return (bits * np.sign(x)[:, None]).astype(np.int8)

    def input_omega(self, t: np.ndarray) -> np.ndarray:
        return self._omega(np.asarray(t))

    def layer_omega(self, t: np.ndarray, depth: int, output: bool) -> np.ndarray:
        local = np.asarray(t) - depth
        w = self._omega(np.maximum(local, 0))
        start = self.skip_periods * self.phases if output else 0
        return np.where(local >= start, w, np.float32(0.0)).astype(np.float32)

    def describe(self) -> str:
        return f"weighted(K={self.phases}, skip={self.skip_periods})"


def parse_coding(coding: InputCoding | str | None) -> InputCoding:
    """`coding` as an InputCoding: None or "direct", "poisson", "weighted" (defaults)."""
    if coding is None:
        return DirectCoding()
    if isinstance(coding, InputCoding):
        return coding
    table: dict[str, type[InputCoding]] = {
        "direct": DirectCoding,
        "poisson": PoissonCoding,
        "weighted": WeightedSpikeCoding,
    }
    if coding not in table:
        raise InputError(f"unknown coding {coding!r}; expected one of {', '.join(table)}")
    return table[coding]()
