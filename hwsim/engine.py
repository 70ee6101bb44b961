"""Integrate-and-fire simulation of a converted network.

Neuron model (Habara et al. 2024 eqs. 7-9; reset by subtraction): V[t] = V[t-1] + I[t];
s[t] = 1 if V[t] >= V_th; V[t] <- V[t] - V_th s[t]; V[0] = V0. Direct coding: the analog image
is the first layer's input current every timestep. Every spiking layer adds one timestep of delay
(it emits at t the spikes it fired at t-1), as in the BayesianSpikeFusion code and a
layer-pipelined chip: block l at t sees block l-1's spikes of t-1. A residual block has two
spiking stages: conv1, and the join conv2(conv1 spikes) + skip(block input). A head is a GAP IF
layer on its tap block's output spikes, then a Linear IF layer.

The engine runs images in batches with a dense batched conv per layer and timestep (torch,
float32), so memory holds one batch's state whatever T is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.convert import SpikingNetwork


@dataclass(frozen=True)
class SimResult:
    """Spikes of a simulation of N images for T timesteps.

    `head_spikes[h]` is (N, T, classes) uint8: head h's output spikes at each timestep t
    (index t = timestep t + 1). `layer_names` names every spiking layer; `layer_spikes` is
    (T, L) int64: output spikes of each layer at each timestep, summed over the images, and
    `layer_neurons` (L,) the neurons of each layer per image.
    """

    head_spikes: dict[int, np.ndarray]
    layer_names: tuple[str, ...]
    layer_spikes: np.ndarray
    layer_neurons: np.ndarray

    @property
    def timesteps(self) -> int:
        return self.layer_spikes.shape[0]

    @property
    def images(self) -> int:
        return next(iter(self.head_spikes.values())).shape[0]

    def spike_rates(self) -> np.ndarray:
        """Mean firing probability per layer over images and timesteps, (L,)."""
        return self.layer_spikes.sum(0) / (self.layer_neurons * self.timesteps * self.images)


class _IF:
    """A population of IF neurons with reset by subtraction and a one-step output delay."""

    def __init__(self, shape: tuple[int, ...], v0: float, threshold: float):
        self.v = torch.full(shape, v0, dtype=torch.float32)
        self.out = torch.zeros(shape, dtype=torch.float32)
        self.threshold = threshold

    def step(self, current: torch.Tensor) -> torch.Tensor:
        """Integrate `current`, fire, and return the spikes of the previous step."""
        prev = self.out
        self.v += current
        spikes = (self.v >= self.threshold).float()
        self.v -= spikes * self.threshold
        self.out = spikes
        return prev


def layer_names(snn: SpikingNetwork) -> tuple[str, ...]:
    """Names of the spiking layers, in the order of SimResult.layer_spikes."""
    names: list[str] = []
    for i, b in enumerate(snn.blocks):
        names += [f"block{i}.conv1", f"block{i}.join"] if b.is_residual else [f"conv{i}"]
    for h in snn.heads:
        tag = "fc" if h < 0 else f"ic{h}"
        names += [f"{tag}.gap", f"{tag}.linear"]
    return tuple(names)


def simulate(
    snn: SpikingNetwork,
    images: np.ndarray,
    timesteps: int,
    *,
    batch_size: int = 250,
    on_batch: Callable[[int], None] | None = None,
) -> SimResult:
    """Run `images` (N, C, H, W) float32 through the SNN for `timesteps` steps (direct coding)."""
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")
    n = len(images)
    names = layer_names(snn)
    th, v0 = snn.params.threshold, snn.params.v0
    classes = snn.spec.num_classes
    head_spikes = {h: np.zeros((n, timesteps, classes), np.uint8) for h in snn.heads}
    layer_spikes = np.zeros((timesteps, len(names)), np.int64)
    neurons: list[int] = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            # one probe pass for the shapes of every spiking layer
            shapes: list[tuple[int, ...]] = []
            probe = x
            for b in snn.blocks:
                y = b.conv(probe)
                shapes.append(tuple(y.shape))
                if b.is_residual:
                    y = b.conv2(y)
                    shapes.append(tuple(y.shape))
                probe = y
            for hd in snn.heads.values():
                c = snn.blocks[hd.tap].conv.weight.shape[0]
                shapes += [(len(x), c), (len(x), classes)]
            pops = [_IF(s, v0, th) for s in shapes]
            if not neurons:
                neurons = [int(np.prod(s[1:])) for s in shapes]
            rec = {
                h: torch.zeros((timesteps, len(x), classes), dtype=torch.uint8) for h in snn.heads
            }
            for t in range(timesteps):
                k = 0
                inp = x
                block_out: list[torch.Tensor] = []
                for b in snn.blocks:
                    if b.is_residual:
                        skip = b.skip(inp)
                        mid = pops[k].step(b.conv(inp))
                        inp = pops[k + 1].step(b.conv2(mid) + skip)
                        k += 2
                    else:
                        inp = pops[k].step(b.conv(inp))
                        k += 1
                    block_out.append(inp)
                for h, hd in snn.heads.items():
                    gap = pops[k].step(block_out[hd.tap].mean(dim=(2, 3)))
                    rec[h][t] = pops[k + 1].step(F.linear(gap, hd.weight, hd.bias)).to(torch.uint8)
                    k += 2
                for j, p in enumerate(pops):
                    layer_spikes[t, j] += int(p.out.sum())
            for h in snn.heads:
                head_spikes[h][start : start + len(x)] = rec[h].permute(1, 0, 2).numpy()
            if on_batch is not None:
                on_batch(len(x))
    return SimResult(head_spikes, names, layer_spikes, np.asarray(neurons, np.int64))
