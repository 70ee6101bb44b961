"""The neuron node hwsim's export writes for one population, per export target: the values that
make the target's own NIR importer step hwsim's `Neuron`, or a refusal naming the population
and what the target's importer cannot say.

A population's membrane is written in file units: V_file = s V (`scale` s: H W for a global
SumPool2d into it, the pooling node's weight over the layer's for a local pooling), so its
threshold is s theta and its v_leak and reset potential are scaled alike. What each importer
builds from a node (versions in docs/nir.md; dt its step, read from its code):

- hwsim: IF: V <- V + (r / if_r) I; LIF: forward Euler at dt = 1 s (leak 1 - 1 / tau).
- sinabs: IF -> IAF (V >= theta, subtracts; a reset to 0 is the setting MembraneReset(),
  and no other potential: sinabs 3.1.3's MembraneReset(reset_value) adds reset_value to every
  neuron at every step); LIF -> LIFSqueeze(tau_mem = tau, norm_input=False): leak
  exp(-1 / tau) in float32, input gain 1, v_leak 0, subtracts (or MembraneReset()).
- snntorch: IF -> Leaky(beta = 0.9), a leaky neuron: refused; LIF -> Leaky(beta = 1 - dt / tau,
  reset_mechanism "zero", no reset_delay), V > theta, needs r dt / tau = 1 and v_leak 0.
- norse: IF -> IAFCell: V > theta, resets to 0, starts at 0 (its v_reset is not read); LIF ->
  LIFBoxCell: leak 1 - dt / tau, gain dt / tau (r not read), v_leak, resets to 0, starts at
  v_leak.
- spikingjelly: IF (r = 1 / dt) -> IFNode(v_reset): V >= theta, a hard reset, starts at v_reset
  (its soft reset, v_reset = None, is a setting); LIF -> LIFNode(tau / dt, decay_input = (r ==
  1)), whose membrane decays to v_reset (v_leak = v_reset).

A max pooling's population (`graph.Pool.MAX`: V is 0 before every step, so any window spike
fires it) is written in each target's own form with its threshold inside the OR range of the
pooling node's step w (1 sum, 1 / (k_h k_w) average): w at V >= theta, w / 2 at V > theta
(`or_node`); snntorch, whose IF is leaky, gets a LIF resetting to zero.

`metadata["neurons"]` (JSON: node -> the population's `Neuron`, potentials in units of the
threshold, `written_step`) records every population that is not hwsim's plain IF, what NIR
cannot say (a reset to 0, V > theta, a delayed reset, the start): hwsim's importer steps those
nodes by it (`nir_convention.written_neurons`), and a peer's user applies the settings
docs/nir.md names from it (sinabs' MembraneReset, spikingjelly's soft reset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwsim.model.graph import Neuron
from hwsim.model.nir_convention import Firing, NirConvention, PoolKind
from hwsim.model.nir_nodes import NirError


@dataclass(frozen=True)
class NeuronNode:
    """One written neuron node: per-neuron-uniform values in file units."""

    kind: str  # "IF" or "LIF"
    threshold: float
    r: float
    v_reset: float
    tau: float | None = None
    v_leak: float = 0.0

    def node(self, nir: Any, shape: tuple[int, ...]) -> Any:
        """The `nir` node, every value repeated over `shape` (a LIF's tau and r in float64)."""

        def full(v: float, dtype: type = np.float32) -> np.ndarray:
            return np.full(shape, v, dtype)

        common = {"v_threshold": full(self.threshold), "v_reset": full(self.v_reset)}
        if self.kind == "IF":
            return nir.IF(r=full(self.r), **common)
        return nir.LIF(
            tau=full(self.tau, np.float64),
            r=full(self.r, np.float64),
            v_leak=full(self.v_leak),
            **common,
        )


def written_step(neuron: Neuron, theta: float) -> dict[str, Any]:
    """A population's `Neuron` for `metadata["neurons"]`: its fields, potentials in units of
    the threshold (v_leak, reset_to, v_init divided by theta)."""

    def unit(v: float | None) -> float | None:
        return None if v is None else v / theta

    return {
        "leak": neuron.leak,
        "gain": neuron.gain,
        "v_leak": unit(neuron.v_leak),
        "strict": neuron.strict,
        "delayed_reset": neuron.delayed_reset,
        "reset_to": unit(neuron.reset_to),
        "v_init": unit(neuron.v_init),
    }


class _Rules:
    """The checks of one population against a target, each refusal naming both."""

    def __init__(self, pop: str, neuron: Neuron, target: str):
        self.pop, self.n, self.target = pop, neuron, target

    def need(self, ok: bool, what: str) -> None:
        if not ok:
            raise NirError(
                f"population {self.pop!r} steps {_describe(self.n)}; {self.target}'s NIR"
                f" importer {what}, so it cannot be exported for {self.target}"
            )

    def start(self, at: float, where: str) -> None:
        s = self.n.start(0.0)
        self.need(s == at, f"starts the membrane at {where} ({at:g}), not at {s:g}")


def _describe(n: Neuron) -> str:
    reset = "subtract theta" if n.reset_to is None else f"reset to {n.reset_to:g}"
    text = f"leak {n.leak:g}, gain {n.gain:g}, v_leak {n.v_leak:g}, {reset}"
    text += ", V > theta" if n.strict else ", V >= theta"
    text += ", delayed reset" if n.delayed_reset else ""
    return text + (f", start {n.v_init:g}" if n.v_init is not None else "")


def neuron_node(
    target: NirConvention, pop: str, neuron: Neuron, theta: float, scale: float
) -> NeuronNode:
    """The node `target`'s importer reads as `neuron` (engine threshold `theta`, membrane
    scale `scale`), or `NirError` naming the population and what the importer lacks."""
    th = theta * scale
    reset = 0.0 if neuron.reset_to is None else neuron.reset_to * scale
    rules = _Rules(pop, neuron, target.name)
    if neuron.leak == 1:
        rules.need(neuron.gain == 1, "builds an IF node without an input gain (gain != 1)")
    if target.name == "hwsim":
        if neuron.leak == 1:
            return NeuronNode("IF", th, target.if_r, reset)
        tau = target.dt / (1 - neuron.leak)
        return NeuronNode(
            "LIF", th, neuron.gain * tau / target.dt, reset, tau, neuron.v_leak * scale
        )
    rules.need(not neuron.delayed_reset, "has no delayed reset (snntorch's reset_delay)")
    return _PEERS[target.name](target, rules, th, reset, scale)


def _sinabs(t: NirConvention, rules: _Rules, th, reset, scale) -> NeuronNode:
    n = rules.n
    rules.need(not n.strict, "fires at V >= theta (not V > theta)")
    rules.start(0.0, "0")
    rules.need(  # sinabs 3.1.3's MembraneReset sets v * (no spike) + reset_value for all
        n.reset_to in (None, 0.0),
        "resets to a potential only with MembraneReset, which adds"
        " reset_value to every neuron at every step: only a reset to 0 is expressible",
    )
    if n.leak == 1:
        return NeuronNode("IF", th, t.if_r, reset)
    rules.need(n.gain == 1, "builds LIFSqueeze(norm_input=False): input gain 1")
    rules.need(n.v_leak == 0, "refuses v_leak != 0")
    rules.need(0 < n.leak < 1, "steps a leak exp(-1 / tau) in (0, 1)")
    tau = _sinabs_tau(n.leak)
    rules.need(tau is not None, f"computes exp(-1 / tau) in float32, never {n.leak!r} exactly")
    return NeuronNode("LIF", th, 1.0, reset, tau, 0.0)


def _sinabs_tau(leak: float) -> float | None:
    """A float32 tau whose float32 exp(-1 / tau) (sinabs' alpha) is `leak` (searched within 16
    float32 steps of -1 / ln(leak)), else None."""
    import torch

    tau = np.float32(-1.0 / math.log(leak))
    ulp = np.spacing(tau)
    candidates = tau + ulp * np.array(sorted(range(-16, 17), key=abs), np.float32)
    alphas = torch.exp(-1.0 / torch.from_numpy(candidates.astype(np.float32)))
    hits = np.flatnonzero(alphas.numpy() == np.float32(leak))
    return float(candidates[hits[0]]) if hits.size else None


def _snntorch(t: NirConvention, rules: _Rules, th, reset, scale) -> NeuronNode:
    n = rules.n
    rules.need(n.leak != 1, "builds an IF node as a leaky Leaky(beta=0.9)")
    rules.need(n.reset_to == 0, "builds LIF as Leaky(reset_mechanism='zero'): a reset to 0")
    rules.need(n.strict, "fires at V > theta")
    rules.need(n.gain == 1 and n.v_leak == 0, "needs an input gain 1 and v_leak 0")
    rules.start(0.0, "0")
    tau = t.dt / (1 - n.leak)
    return NeuronNode("LIF", th, tau / t.dt, 0.0, tau, 0.0)


def _norse(t: NirConvention, rules: _Rules, th, reset, scale) -> NeuronNode:
    n = rules.n
    rules.need(n.reset_to == 0, "resets a spiking neuron to 0 (it reads no v_reset)")
    rules.need(n.strict, "fires at V > theta")
    if n.leak == 1:
        rules.start(0.0, "0")
        return NeuronNode("IF", th, t.if_r, 0.0)
    rules.need(n.leak < 1, "steps a leak 1 - dt / tau < 1")
    rules.need(
        n.gain == float(np.float32(1 - n.leak)), "steps LIFBoxCell: input gain dt / tau = 1 - leak"
    )
    rules.start(n.v_leak, "v_leak")
    tau = t.dt / (1 - n.leak)
    return NeuronNode("LIF", th, 1.0, 0.0, tau, n.v_leak * scale)


def _spikingjelly(t: NirConvention, rules: _Rules, th, reset, scale) -> NeuronNode:
    n = rules.n
    rules.need(not n.strict, "fires at V >= theta (not V > theta)")
    rules.start(0.0 if n.reset_to is None else n.reset_to, "its v_reset (0 for a soft reset)")
    if n.leak == 1:
        return NeuronNode("IF", th, t.if_r, reset)
    rules.need(0 < n.leak < 1, "steps LIFNode(tau > 1 step): a leak in (0, 1)")
    rules.need(n.v_leak == (n.reset_to or 0.0), "builds LIFNode, whose membrane decays to v_reset")
    tau_steps = 1 / (1 - n.leak)
    if n.gain == 1:
        r = tau_steps
    else:
        rules.need(n.gain == float(np.float32(1 - n.leak)), "scales the input by 1 or 1 / tau")
        r = 1.0
    return NeuronNode("LIF", th, r, reset, tau_steps * t.dt, reset)


_PEERS = {"sinabs": _sinabs, "snntorch": _snntorch, "norse": _norse, "spikingjelly": _spikingjelly}


def or_node(target: NirConvention, pooling: PoolKind, kernel: tuple[int, int]) -> NeuronNode:
    """A max pooling's neurons after the pooling node `pooling` of `kernel` written for
    `target`: a threshold in the OR range of the node's step (w at V >= theta, w / 2 at V >
    theta), a reset to 0 from 0 (a LIF for snntorch, whose importer's IF leaks)."""
    w = 1.0 if pooling is PoolKind.SUM else 1.0 / (kernel[0] * kernel[1])
    th = w if target.firing is Firing.GE else w / 2
    if target.name == "snntorch":
        tau = 2 * target.dt  # beta 0.5: V is 0 before every step whatever the leak
        return NeuronNode("LIF", th, tau / target.dt, 0.0, tau, 0.0)
    return NeuronNode("IF", th, target.if_r, 0.0)
