"""How a NIR file's neurons are meant to be stepped: the peers' conventions, and the typed
description of every neuron and pooling node that hwsim reads from a graph.

NIR 1.0 writes continuous-time neurons; every simulator steps them its own way, and the file
does not say which. A `NirConvention` is that missing part: the step `dt` (s) of leaky
neurons, the `r` of an IF node that integrates its input once per step (the peers disagree:
sinabs, snntorch and norse write 1, spikingjelly 1 / dt), firing at V >= theta or V > theta,
and what a reset potential means (reset by subtracting the threshold, for which the peers that
subtract write v_reset = 0, or a reset to the potential); and, for export, the pooling node its
importer reads (sinabs and norse read SumPool2d only, snntorch and spikingjelly AvgPool2d
only). The presets below are read from each peer's own code (versions in docs/nir.md); hwsim's
exports name theirs in `metadata["convention"]`.

With the step dt, forward Euler (the discretisation the exporters use: snntorch's
beta = 1 - dt / tau, spikingjelly's decay 1 - 1 / tau_steps, norse's dt / tau) gives per step
(sinabs steps a LIF exactly, input held over the step: leak = exp(-dt / tau), gain
r (1 - leak), `NirConvention.lif_exp`):

- IF (dv/dt = r I):                              v <- v + (r / if_r) I
- LIF (tau dv/dt = (v_leak - v) + r I):          v <- leak v + (1 - leak) v_leak + r dt / tau I,
  leak = 1 - dt / tau
- CubaLIF: the synaptic current decays by 1 - dt / tau_syn and integrates w_in dt / tau_syn I
  first, then the membrane as the LIF.

`NeuronSpec` and `PoolSpec` carry these per-node numbers; `neuron_model` turns an IF or LIF
node into the engine's `hwsim.model.graph.Neuron` (the leaky path, docs/engine.md; a reset to
a potential: `Neuron.reset_to`), and `check_neurons` refuses what the engine cannot step
(CubaLIF, a leak outside [0, 1], a reset to a potential under a delayed reset), naming the
node and printing its description. hwsim's own exports record each population's step in
`metadata["neurons"]` (`hwsim.model.nir_targets`); `written_neurons` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np

from hwsim.model.graph import GraphError, Neuron
from hwsim.model.nir_nodes import NirError, as_array, int_pair, kind_of


class Firing(Enum):
    """When a neuron spikes."""

    GE = ">="  # V >= theta (hwsim, sinabs, spikingjelly)
    GT = ">"  # V > theta (snntorch, norse: heaviside(V - theta) is 0 at 0)


class Reset(Enum):
    """What a spike does to the membrane; v_reset = 0 reads as SUBTRACT under a convention
    that subtracts (NIR has no field for it)."""

    SUBTRACT = "subtract"  # V <- V - theta (hwsim, sinabs' MembraneSubtract, snntorch default)
    TO_VALUE = "to_value"  # V <- v_reset (norse, spikingjelly's exported hard reset)


@dataclass(frozen=True)
class NirConvention:
    """How a producer steps NIR neurons: `dt` (s per step of a leaky neuron), `if_r` (an IF
    node's r for one integration of its input per step), its firing rule and reset, and the
    pooling node its importer reads (`pooling`)."""

    name: str
    dt: float
    if_r: float
    firing: Firing
    reset: Reset
    pooling: PoolKind
    source: str  # where the convention is read from (the peer's code)
    reset_delay: bool = False  # a spike's threshold is subtracted at the next step, after the leak
    lif_exp: bool = False  # a LIF steps exactly (leak exp(-dt / tau)), not by forward Euler
    start_at_reset: bool = False  # membranes start at v_reset, not at the network's V0


class PoolKind(Enum):
    AVG = "avg"
    SUM = "sum"


HWSIM = NirConvention(
    "hwsim",
    1.0,
    1.0,
    Firing.GE,
    Reset.SUBTRACT,
    PoolKind.SUM,
    "docs/engine.md; hwsim's own exports (it reads both pooling nodes)",
)
PRESETS: dict[str, NirConvention] = {
    c.name: c
    for c in (
        HWSIM,
        NirConvention(
            "sinabs",
            1.0,
            1.0,
            Firing.GE,
            Reset.SUBTRACT,
            PoolKind.SUM,
            "sinabs 3.1.3: IAF writes IF(r=1, v_threshold); SingleSpike fires at v >= theta;"
            " MembraneSubtract; LIF writes LIF(tau = tau_mem, r = 1) and steps v <- alpha v +"
            " (1 - alpha) I, alpha = exp(-1 / tau_mem) (its default norm_input)",
            lif_exp=True,
        ),
        NirConvention(
            "snntorch",
            1e-4,
            1.0,
            Firing.GT,
            Reset.SUBTRACT,
            PoolKind.AVG,
            "snntorch 1.0.0 export_nir: dt = 1e-4, tau = dt / (1 - beta), r = tau / dt;"
            " fires at mem - threshold > 0; Leaky's default reset_mechanism subtract, with its"
            " default reset_delay (mem = beta mem + I - threshold s(t-1)); import_nir asserts"
            " IF r = 1",
            reset_delay=True,
        ),
        NirConvention(
            "norse",
            1e-3,
            1.0,
            Firing.GT,
            Reset.TO_VALUE,
            PoolKind.SUM,
            "norse 1.1.0: from_nir dt = 1e-3; IAFCell fires at heaviside(v - v_th) (0 at 0)"
            " and sets v to v_reset, from v = v_reset; IF's r is ignored",
            start_at_reset=True,
        ),
        NirConvention(
            "spikingjelly",
            1e-4,
            1e4,
            Firing.GE,
            Reset.TO_VALUE,
            PoolKind.AVG,
            "spikingjelly 2.0.0 nir_exchange: dt = 1e-4, IF r = 1 / dt; only hard resets"
            " (v_reset) export; fires at v - v_threshold >= 0; v starts at v_reset",
            start_at_reset=True,
        ),
    )
}


def convention_named(name: str | None, metadata: dict[str, Any] | None = None) -> NirConvention:
    """The preset `name`; None: the one the file's metadata names (hwsim's exports), else
    hwsim's (sinabs' for IF neurons)."""
    if name is None:
        name = str((metadata or {}).get("convention", HWSIM.name))
        if name in PRESETS and "if_r" in (metadata or {}):  # hwsim's export for a peer
            try:
                if_r = float((metadata or {})["if_r"])
            except (TypeError, ValueError):
                raise NirError(f"the file's metadata if_r {metadata!r} is not a number") from None
            if not (np.isfinite(if_r) and if_r > 0):
                raise NirError(f"the file's metadata if_r = {if_r:g}; expected a number > 0")
            return replace(PRESETS[name], if_r=if_r)
        if name not in PRESETS:
            raise NirError(
                f"the file's metadata names the convention {name!r}; known: {', '.join(PRESETS)}"
                " (choose one with --convention)"
            )
    if name not in PRESETS:
        raise NirError(f"--convention {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class NeuronSpec:
    """One spiking node's step, per neuron-uniform values (see the module's equations).

    leak: membrane factor per step (1: no leak); gain: factor on the input current per step;
    v_leak: the potential the leak draws towards; syn_leak / syn_gain: the CubaLIF synaptic
    current's decay and input factor (None for IF and LIF)."""

    node: str
    kind: str
    threshold: float
    leak: float
    gain: float
    v_leak: float
    v_reset: float
    reset: Reset
    firing: Firing
    syn_leak: float | None = None
    syn_gain: float | None = None

    def describe(self) -> str:
        reset = "subtract" if self.reset is Reset.SUBTRACT else f"to {self.v_reset:g}"
        text = (
            f"leak {self.leak:g} per step, input gain {self.gain:g}, threshold"
            f" {self.threshold:g}, fires at V {self.firing.value} theta, reset {reset}"
        )
        if self.syn_leak is not None:
            text += f", synaptic decay {self.syn_leak:g}, synaptic gain {self.syn_gain:g}"
        return text


@dataclass(frozen=True)
class PoolSpec:
    """A pooling node: kind, kernel, stride and padding (h, w), and whether it is global
    (kernel = the whole input map, padding 0)."""

    node: str
    kind: PoolKind
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    is_global: bool

    def describe(self) -> str:
        k, s, p = self.kernel, self.stride, self.padding
        return (
            f"{self.kind.value} pooling, kernel {k[0]}x{k[1]}, stride {s[0]}x{s[1]},"
            f" padding {p[0]}x{p[1]}"
        )


def _uniform(name: str, kind: str, what: str, value: Any) -> float:
    v = as_array(value).reshape(-1)
    if v.size == 0:
        raise NirError(f"{kind} {name!r}: {what} is empty")
    if not np.all(v == v[0]):
        raise NirError(
            f"{kind} {name!r}: {what} varies between neurons ({float(v.min()):g} .."
            f" {float(v.max()):g}); hwsim reads one value per node"
        )
    return float(v[0])


def read_neuron(name: str, node: Any, convention: NirConvention) -> NeuronSpec:
    """The step of an IF, LIF or CubaLIF node under `convention` (values uniform per node)."""
    kind = kind_of(node)
    dt = convention.dt
    thr = _uniform(name, kind, "v_threshold", node.v_threshold)
    r = _uniform(name, kind, "r", node.r)
    raw_reset = getattr(node, "v_reset", None)
    v_reset = 0.0 if raw_reset is None else _uniform(name, kind, "v_reset", raw_reset)
    subtracts = convention.reset is Reset.SUBTRACT and v_reset == 0
    reset = Reset.SUBTRACT if subtracts else Reset.TO_VALUE
    common = {"threshold": thr, "v_reset": v_reset, "reset": reset, "firing": convention.firing}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "IF":
            return NeuronSpec(name, kind, leak=1.0, gain=r / convention.if_r, v_leak=0.0, **common)
        tau = _uniform(name, kind, "tau" if kind == "LIF" else "tau_mem", _tau(node))
        v_leak = _uniform(name, kind, "v_leak", node.v_leak)
        leak, gain = 1 - dt / tau, r * dt / tau
        if convention.lif_exp and kind == "LIF":  # the gain from the float32 leak, as sinabs
            leak = float(np.float32(np.exp(-dt / tau)))
            gain = r * float(np.float32(1) - np.float32(leak))
        spec = NeuronSpec(name, kind, leak=leak, gain=gain, v_leak=v_leak, **common)
        if kind == "CubaLIF":
            tau_syn = _uniform(name, kind, "tau_syn", node.tau_syn)
            w_in = _uniform(name, kind, "w_in", node.w_in)
            spec = NeuronSpec(
                **{**spec.__dict__, "syn_leak": 1 - dt / tau_syn, "syn_gain": w_in * dt / tau_syn}
            )
    for what in ("leak", "gain", "syn_leak", "syn_gain"):
        v = getattr(spec, what)
        if v is not None and not np.isfinite(v):
            raise NirError(
                f"{kind} {name!r}: its {what} per step is {v:g} at dt = {dt:g} s"
                f" (convention {convention.name!r}); a neuron hwsim can step needs finite values"
            )
    return spec


def _tau(node: Any) -> Any:
    return node.tau if kind_of(node) == "LIF" else node.tau_mem


def read_pool(name: str, node: Any, in_shape: tuple[int, ...]) -> PoolSpec:
    """A pooling node's geometry; NIR's pooling has no dilation or ceil mode, and a missing
    stride is the kernel."""
    kind = kind_of(node)
    if len(in_shape) != 3:
        raise NirError(f"{kind} {name!r} reads a {in_shape} vector, not a (C, H, W) map")
    kernel = int_pair(node.kernel_size, "kernel_size", name)
    stride = kernel if node.stride is None else int_pair(node.stride, "stride", name)
    padding = int_pair(node.padding, "padding", name)
    return PoolSpec(
        name,
        PoolKind.AVG if kind == "AvgPool2d" else PoolKind.SUM,
        kernel,
        stride,
        padding,
        kernel == tuple(in_shape[1:]) and padding == (0, 0),
    )


def check_neurons(nodes: dict[str, Any], convention: NirConvention) -> None:
    """Refuse, naming the node and what it needs, every spiking node that hwsim's engine cannot
    step under `convention`: a CubaLIF (its step is printed), a leak outside [0, 1], a reset
    to a nonzero potential under a delayed reset (snntorch's)."""
    for name, node in nodes.items():
        kind = kind_of(node)
        if kind in ("LIF", "CubaLIF"):
            spec = read_neuron(name, node, convention)
            if kind == "CubaLIF":
                raise NirError(
                    f"node {name!r} is a CubaLIF: a current-based leaky neuron ({spec.describe()};"
                    f" convention {convention.name!r}); hwsim's engine steps IF and LIF neurons,"
                    " without a synaptic current"
                )
            if not 0 <= spec.leak <= 1:
                raise NirError(
                    f"LIF {name!r}: its leak per step is {spec.leak:g} (tau {_tau_text(node)} at"
                    f" dt = {convention.dt:g} s, convention {convention.name!r}); hwsim steps a"
                    f" leak in [0, 1] (tau >= {'0' if convention.lif_exp else 'dt'})"
                )
        elif kind != "IF":
            continue
        reset = _v_reset(node)
        if convention.reset_delay and np.any(reset != 0):
            v = float(reset.reshape(-1)[np.flatnonzero(reset)[0]])
            raise NirError(
                f"{kind} {name!r}: v_reset = {v:g} under the convention {convention.name!r},"
                " whose reset is delayed (the threshold subtracted at the next step); a delayed"
                " reset to a potential is not simulated"
            )


def _v_reset(node: Any) -> np.ndarray:
    raw = getattr(node, "v_reset", None)
    return as_array(raw if raw is not None else 0.0).astype(np.float64)


def reset_potential(name: str, node: Any, convention: NirConvention, theta: float):
    """The potential a spike of an IF or LIF node resets to in the engine's units (v_reset
    scaled with the membrane by theta / v_threshold), or None where it subtracts theta
    (v_reset = 0 under a convention that subtracts)."""
    v_reset = _v_reset(node)
    if convention.reset is Reset.SUBTRACT and not np.any(v_reset != 0):
        return None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scaled = v_reset * theta / as_array(node.v_threshold).astype(np.float64)
    kind = kind_of(node)
    v = _uniform(name, kind, "v_reset / v_threshold", scaled)
    if not abs(v) <= float(np.finfo(np.float32).max):
        raise NirError(
            f"{kind} {name!r}: v_reset / v_threshold = {v:g}; a reset potential hwsim can step"
            " is a finite float32 multiple of the threshold"
        )
    return v


def _tau_text(node: Any) -> str:
    tau = as_array(_tau(node)).reshape(-1)
    return f"{float(tau[0]):g} s" if tau.size else "empty"


def neuron_model(name: str, node: Any, convention: NirConvention, theta: float) -> Neuron:
    """The engine's neuron of an IF or LIF node (checked by `check_neurons`) whose membrane
    the importer scaled by theta / v_threshold (`theta`: the engine's threshold): an IF's gain
    is in its layers' weights, a LIF keeps its leak and input gain, and its v_leak and reset
    potential (`reset_potential`) are scaled with the membrane, where it also starts under a
    convention that starts there."""
    strict = convention.firing is Firing.GT
    reset_to = reset_potential(name, node, convention, theta)
    delayed = convention.reset_delay
    v_init = reset_to if convention.start_at_reset else None
    if kind_of(node) == "IF":
        return Neuron(strict=strict, delayed_reset=delayed, reset_to=reset_to, v_init=v_init)
    spec = read_neuron(name, node, convention)
    return Neuron(
        leak=spec.leak,
        gain=spec.gain,
        v_leak=spec.v_leak * theta / spec.threshold,
        strict=strict,
        delayed_reset=delayed,
        reset_to=reset_to,
        v_init=v_init,
    )


def written_neurons(metadata: dict[str, Any], convention: NirConvention) -> dict[str, dict]:
    """The populations' steps an hwsim export recorded (`metadata["neurons"]`, JSON: IF/LIF
    node -> `Neuron` fields, potentials in units of the threshold; `nir_targets`), read when
    the file is read under the convention it names; {} otherwise or where it is malformed."""
    if convention.name != str(metadata.get("convention", "")) or "neurons" not in metadata:
        return {}
    try:
        steps = json.loads(str(metadata["neurons"]))
        for step in steps.values():
            Neuron(**step)
    except (json.JSONDecodeError, TypeError, AttributeError, ValueError, GraphError) as e:
        raise NirError(f"the file's metadata 'neurons' is not hwsim's record ({e})") from None
    return steps


def written_model(step: dict, theta: float) -> Neuron:
    """A recorded step (`written_neurons`) as the engine's neuron at threshold `theta`."""
    scaled = {k: (v * theta if k in _POTENTIALS and v is not None else v) for k, v in step.items()}
    return Neuron(**scaled)


_POTENTIALS = ("v_leak", "reset_to", "v_init")


def neuron_models(
    nodes: dict[str, Any],
    names: list[str],
    convention: NirConvention,
    theta: float,
    written: dict[str, dict],
) -> dict[str, Neuron]:
    """The engine's neuron of every IF/LIF node in `names`: the recorded step where an hwsim
    export wrote one (`written_neurons`), else `neuron_model`."""
    return {
        n: written_model(written[n], theta)
        if n in written
        else neuron_model(n, nodes[n], convention, theta)
        for n in names
    }
