"""The dense torch engine: one batched conv per connection and timestep (float32), the
reference the event-driven numba engine (`hwsim.engine.backends.NumbaBackend`) is tested
against; its activity counting shares the numba backend's tables and counting kernels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hwsim.engine.backends import (
    Backend,
    ChunkOut,
    CrossbarSynapse,
    NumbaBackend,
    Runner,
    Synapse,
    activity_of,
    is_unrolled,
    layer_bias,
    per_connection,
    schedule,
)
from hwsim.engine.plan import Conn, Plan
from hwsim.errors import InputError
from hwsim.model.coding import InputCoding
from hwsim.model.graph import Neuron


class TorchBackend(Backend):
    """Dense torch engine: one batched conv per connection and timestep (float32); uses
    torch's intra-op threads (`threads` is ignored: set torch.set_num_threads).

    `synapses` (one per connection of `plan`, None: the dense op) give connections' currents
    instead of their dense ops; they take no phase weight, so a phased coding is refused; a
    `CrossbarSynapse` is refused too (it runs on the numba backend).
    """

    name = "torch"

    def __init__(
        self,
        plan: Plan,
        coding: InputCoding,
        rows: int = 0,
        cols: int = 1,
        threads: int = 0,
        mapping: str = "kernel_split",
        synapses: Sequence[Synapse | CrossbarSynapse | None] | None = None,
    ):
        self.plan, self.coding, self.rows = plan, coding, rows
        is_unrolled(mapping)
        self.synapses: list[Synapse | None] = []
        for c, syn in zip(plan.conns, per_connection(plan, coding, synapses), strict=True):
            if isinstance(syn, CrossbarSynapse):
                raise InputError(f"crossbar synapse of {c.name}: it runs on the numba backend")
            self.synapses.append(syn)
        # activity counting shares the Numba backend's tables and counting kernels
        self.tables = NumbaBackend(plan, coding, rows, cols, 1, mapping) if rows else None
        self.bias = [torch.from_numpy(b) for b in layer_bias(plan, coding)]

    def start(self, x: np.ndarray, ids: np.ndarray, chunk: int) -> TorchRunner:
        return TorchRunner(self, x, ids, chunk)


class TorchRunner(Runner):
    def __init__(self, be: TorchBackend, x: np.ndarray, ids: np.ndarray, chunk: int):
        self.be, self.x, self.ids = be, x, ids
        plan = be.plan
        nb = len(x)

        def shape(ly):
            h, w, c = ly.shape
            return (nb, c) if ly.flat else (nb, c, h, w)

        self.v = [torch.full(shape(ly), ly.neuron.start(plan.v0)) for ly in plan.layers]
        self.out = [torch.zeros(shape(ly)) for ly in plan.layers]
        self.xt = torch.from_numpy(np.ascontiguousarray(x))
        # an analog input's current is the same at every step: computed once per batch (unless
        # a synapse gives it, which is called every step)
        self.const: dict[int, torch.Tensor] = {}
        if be.coding.analog:
            with torch.no_grad():
                for g, c in enumerate(plan.conns):
                    if c.src < 0 and be.synapses[g] is None:
                        self.const[g] = c.torch_forward(self.xt, with_bias=not be.coding.phased)
        self.state_bytes = 2 * sum(t.numel() * 4 for t in self.v)
        self.state_bytes += sum(t.numel() * 4 for t in self.const.values())

    def advance(self, t0: int, t1: int) -> ChunkOut:
        be, plan = self.be, self.be.plan
        coding = be.coding
        nb, tc = len(self.x), t1 - t0
        omega, gscale = schedule(plan, coding, t0, t1)
        rec = np.zeros((nb, tc, len(plan.heads), plan.classes), np.uint8)
        counts = np.zeros((nb, tc, len(plan.layers)), np.int32)
        act = np.zeros((nb, tc, len(plan.conns), 3), np.int32) if be.rows else None
        spikes = None if coding.analog else coding.input_spikes(self.x, self.ids, t0, t1)
        heads = list(plan.heads.values())
        with torch.no_grad():
            for t in range(t0, t1):
                tt = t - t0
                inp = self.xt if spikes is None else torch.from_numpy(spikes[:, tt]).float()
                emitted = list(self.out)  # spikes fired at t-1, emitted at t
                for j in range(len(plan.layers)):
                    om = float(omega[tt, j])
                    if om == 0:
                        self.out[j] = torch.zeros_like(self.out[j])
                        continue
                    cur = None
                    for g in plan.conns_into(j):
                        c = plan.conns[g]
                        src = inp if c.src < 0 else emitted[c.src]
                        syn = be.synapses[g]
                        if syn is not None:
                            y = _checked(syn(src, t), self.v[j], c)
                        elif g in self.const:
                            y = self.const[g]
                            if coding.phased:
                                y = y * float(gscale[tt, g])
                        elif coding.phased:
                            y = c.torch_forward(src, with_bias=False) * float(gscale[tt, g])
                        else:
                            y = c.torch_forward(src)  # bias inside, as the reference code
                        cur = y if cur is None else cur + y
                        if act is not None:
                            act[:, tt, g] = self._activity(g, src)
                    if coding.phased:
                        b = be.bias[j] * om
                        cur = cur + (b[None, :, None, None] if cur.dim() == 4 else b[None, :])
                    th = om * plan.threshold
                    fired = _step(self.v[j], cur, emitted[j], plan.layers[j].neuron, th)
                    self.out[j] = fired
                    counts[:, tt, j] = fired.flatten(1).sum(1).int().numpy()
                for hi, j in enumerate(heads):  # flatten: a conv head's (C, 1, 1) map
                    rec[:, tt, hi] = emitted[j].flatten(1).to(torch.uint8).numpy()
        return ChunkOut(rec, counts, act)

    def _activity(self, g: int, src: torch.Tensor) -> np.ndarray:
        tb = self.be.tables
        assert tb is not None
        a = src if src.dim() == 4 else src[:, :, None, None]
        flat = np.ascontiguousarray((a != 0).permute(0, 2, 3, 1).numpy()).reshape(len(a), -1)
        return activity_of(tb, g, flat.astype(np.int8))


def _step(v: torch.Tensor, cur: torch.Tensor, prev: torch.Tensor, n: Neuron, th: float):
    """One neuron update of a layer (docs/engine.md) in place on its membranes v, its spikes
    of the step before `prev`, threshold th: the numba engine's float32 operations in its
    order (`_kernels._make_if_scan`), a spike resetting V to `reset_to` where set. Returns the
    spikes (float 0/1)."""
    f32 = torch.float32
    if n.leaky:
        v *= torch.tensor(n.leak, dtype=f32)
        v += torch.tensor(n.v_rest, dtype=f32)
        v += cur * torch.tensor(n.gain, dtype=f32)
        if n.delayed_reset:
            v -= prev * torch.tensor(th, dtype=f32)
    else:
        v += cur
    fired = (v > th if n.strict else v >= th).float()
    if n.reset_to is not None:
        v.copy_(torch.where(fired != 0, torch.tensor(n.reset_to, dtype=f32), v))
    elif not n.delayed_reset:
        v -= fired * th
    return fired


def _checked(y: torch.Tensor, v: torch.Tensor, c: Conn) -> torch.Tensor:
    """A synapse's current, refused unless float32 and shaped as its population's membranes."""
    if y.shape != v.shape or y.dtype != torch.float32:
        raise InputError(
            f"synapse of {c.name}: current {tuple(y.shape)} {y.dtype}, expected"
            f" {tuple(v.shape)} torch.float32"
        )
    return y
