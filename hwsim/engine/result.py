"""What a simulation is asked to count and what it returns (`SimResult`), apart from the
backends that run it (they import torch): a run reads its stored traces with these alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hwsim.errors import InputError

BACKEND_NAMES = ("numba", "torch")
"""The engine's backends by name (`core.BACKENDS` holds their classes)."""

MAPPINGS = ("kernel_split", "unrolled")
"""Crossbar mappings the activity counting knows (hwsim.hw.arch.MappingStyle values)."""


@dataclass(frozen=True)
class ActivitySpec:
    """How a layer's weights sit on crossbars, for counting the reads its spikes need.

    `mapping` "kernel_split" (SpikeSim): one crossbar per kernel position (ky, kx), input
    channels on rows in groups of `rows_per_crossbar`; "unrolled": the k_h k_w C_in weights of
    a kernel flattened onto rows (kernel position major, channel minor) in groups of
    `rows_per_crossbar`. Output channels on columns in blocks of `cols_per_crossbar`.
    `per_image`: also keep per-image counts (N, T, G), int32.
    """

    rows_per_crossbar: int = 64
    cols_per_crossbar: int = 64
    per_image: bool = False
    mapping: str = "kernel_split"

    def __post_init__(self) -> None:
        if self.mapping not in MAPPINGS:
            raise InputError(
                f"unknown crossbar mapping {self.mapping!r}; expected one of {', '.join(MAPPINGS)}"
            )
        if self.rows_per_crossbar < 1 or self.cols_per_crossbar < 1:
            raise InputError(
                f"crossbar rows and columns must be >= 1, got {self.rows_per_crossbar} x"
                f" {self.cols_per_crossbar}"
            )


@dataclass(frozen=True)
class Activity:
    """Per crossbar-mapped layer (connection) g and timestep t, summed over the images.

    `names` are the layer graph's names (`hwsim.model.graph.LayerGraph.names`), in its order;
    `dst[g]` is the index in SimResult.layer_names of the spiking
    layer it feeds. Arrays are (T, G) int64:
    - `in_spikes`: nonzero inputs the layer integrates at t (spikes; for an analog input layer,
      nonzero pixels);
    - `active_pe_ops`: crossbar reads needed: (output position, ky, kx, row group, column block)
      with at least one nonzero input in that window position and row group;
    - `active_windows`: (output position, row group, column block) with at least one nonzero
      input in any of the k_h x k_w positions (SpikeSim's PE operation, event-driven);
    - `out_spikes`: spikes fired at t by the layer it feeds.
    `dense_pe_ops` / `dense_windows` (G,): the same counts if every input were nonzero, per image
    and step (the second is SpikeSim's ceil(C_out/X) ceil(C_in/X) H_out W_out).
    With spec.mapping "unrolled", row groups cut the flattened k_h k_w C_in rows and a PE
    operation (output position, row group, column block) is one crossbar read:
    `active_pe_ops` = `active_windows` = those with a nonzero input row in the output position's
    window, and `dense_pe_ops` = `dense_windows` = H_out W_out ceil(k_h k_w C_in/X) ceil(C_out/Y).
    `per_image` (N, T, G, 4) int32 [in_spikes, active_pe_ops, active_windows, out_spikes], if
    requested.
    An idle layer (weighted spikes before its first input or during output skipping) reads
    nothing and counts zero.
    """

    spec: ActivitySpec
    names: tuple[str, ...]
    dst: np.ndarray
    in_spikes: np.ndarray
    active_pe_ops: np.ndarray
    active_windows: np.ndarray
    out_spikes: np.ndarray
    dense_pe_ops: np.ndarray
    dense_windows: np.ndarray
    per_image: np.ndarray | None = None


@dataclass(frozen=True)
class SimResult:
    """Spikes of a simulation of N images for T timesteps.

    `head_spikes[h]` is (N, T, classes) uint8: head h's output spikes at each timestep t
    (index t = timestep t + 1). `layer_names` names every spiking layer; `layer_spikes` is
    (T, L) int64: output spikes of each layer at each timestep, summed over the images, and
    `layer_neurons` (L,) the neurons of each layer per image. `activity` is set when simulate
    was given an ActivitySpec. `peak_state_bytes`: the largest memory the engine held for one
    batch (membranes, spikes, chunk buffers), excluding these result arrays.
    """

    head_spikes: Mapping[int, np.ndarray]
    layer_names: tuple[str, ...]
    layer_spikes: np.ndarray
    layer_neurons: np.ndarray
    activity: Activity | None = None
    peak_state_bytes: int = 0
    coding: str = "direct"
    backend: str = "numba"

    @property
    def timesteps(self) -> int:
        return self.layer_spikes.shape[0]

    @property
    def images(self) -> int:
        shapes = getattr(self.head_spikes, "shapes", None)  # a read trace's: nothing read
        first = next(iter(self.head_spikes))
        return shapes[first][0] if shapes else self.head_spikes[first].shape[0]

    def spike_rates(self) -> np.ndarray:
        """Mean firing probability per layer over images and timesteps, (L,)."""
        return self.layer_spikes.sum(0) / (self.layer_neurons * self.timesteps * self.images)
