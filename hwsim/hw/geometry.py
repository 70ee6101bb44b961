"""Crossbar and PE arithmetic: how a layer's weights and inputs sit on SpikeSim's crossbars, and
what one PE operation does.

SpikeSim (Moitra et al., IEEE TCAD 2023, `ela_spikesim.py`; BayesianSpikeFusion `spikesim_ene.py`)
lays a layer out as a k_h x k_w kernel over C_in input rows and C_out output columns; a GAP layer
is a (H, W) kernel over C channels, a Linear layer a (4, 1) kernel over ceil(F / 4) channels.
How many PE operations a layer performs is the mapping's (`hwsim.hw.mapping.LayerMapping`:
ceil(C_out / O) ceil(C_in / rows) H_out W_out under kernel_split, O outputs per crossbar; SpikeSim
has O = cols). One PE operation reading n crossbars (kernel_split: the k_h k_w kernel positions
of one channel group, their columns summed in analog; unrolled: one crossbar), with
G = crossbar.cols / adc.columns_per_adc ADCs converting R = columns_per_adc columns each, causes
G n crossbar reads (SpikeSim: each crossbar sensed once per ADC column group), G R = cols ADC
conversions and mux selections, G S shift-adds, G temp-buffer accesses, one tile-buffer access,
L H-tree transfers, one memory fetch and N neuron updates (L = pe.htree_links_per_pe,
N = pe.neuron_units_per_pe, S = pe.shift_adds_per_column_group). SpikeSim's E_PE has
(X/8)^2 conversions, equal to G R = cols for its X = 64 and 8 columns per ADC; hwsim counts the
conversions an ADC actually makes. Energies live in `hwsim.hw.energy`; this module only counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from hwsim.hw.arch import Architecture, MappingStyle
from hwsim.model.graph import Layer, LayerKind

if TYPE_CHECKING:  # torch is imported by the two reference counts that take tensors
    import torch

LINEAR_KERNEL_ROWS = 4
"""BayesianSpikeFusion maps a Linear layer as a (4, 1) kernel over ceil(features / 4) channels
(`parallel_size = 4` in its spikesim_ene.py)."""


class SpikesimGeometry(NamedTuple):
    """A layer's shape as SpikeSim's energy formula counts it."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    out_hw: tuple[int, int]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def spikesim_geometry(layer: Layer) -> SpikesimGeometry:
    """(C_in, C_out, kernel, out_hw) of `layer` as SpikeSim / BayesianSpikeFusion count it.

    CONV: as is. GAP: kernel = the tapped map (H, W), C_in = C_out = channels, output 1x1.
    LINEAR: C_in = ceil(in_features / 4), kernel (4, 1), output 1x1.
    """
    if layer.kind is LayerKind.CONV:
        return SpikesimGeometry(layer.in_channels, layer.out_channels, layer.kernel, layer.out_hw)
    if layer.out_hw != (1, 1):
        raise ValueError(f"layer {layer.name!r}: a {layer.kind} layer must have out_hw (1, 1)")
    if layer.kind is LayerKind.GAP:
        if layer.in_channels != layer.out_channels:
            raise ValueError(f"layer {layer.name!r}: a GAP layer needs in_channels == out_channels")
        return SpikesimGeometry(layer.in_channels, layer.out_channels, layer.kernel, (1, 1))
    if layer.kind is LayerKind.LINEAR:
        if layer.kernel != (1, 1):
            raise ValueError(f"layer {layer.name!r}: a LINEAR layer must have kernel (1, 1)")
        rows = _ceil_div(layer.in_channels, LINEAR_KERNEL_ROWS)
        return SpikesimGeometry(rows, layer.out_channels, (LINEAR_KERNEL_ROWS, 1), (1, 1))
    raise ValueError(f"layer {layer.name!r}: unknown layer kind {layer.kind!r}")


READ_EVENTS: tuple[str, ...] = ("crossbar",)
"""Components charged per crossbar read-out; the others are charged per PE operation."""


def pe_event_counts(arch: Architecture, crossbars: int) -> dict[str, int]:
    """Events of each component in one PE operation that reads `crossbars` crossbars (module
    docstring): crossbar G n, adc G R, mux G R, shift_add G S, temp_buffer G, tile_buffer 1,
    htree L, memory_fetch 1, neuron N."""
    groups = arch.adcs_per_crossbar
    conversions = groups * arch.adc_rounds
    pe = arch.pe
    return {
        "crossbar": groups * crossbars,
        "adc": conversions,
        "mux": conversions,
        "shift_add": groups * pe.shift_adds_per_column_group,
        "temp_buffer": groups,
        "tile_buffer": 1,
        "htree": pe.htree_links_per_pe,
        "memory_fetch": 1,
        "neuron": pe.neuron_units_per_pe,
    }


def layer_patches(
    x: torch.Tensor, layer: Layer, *, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """A layer's crossbar input rows, position-major (P, N, L, C_in): kernel position p, image
    n, output position l, row channel c, as `spikesim_geometry` lays them out.

    CONV: x (N, C, H, W) with the layer's kernel, `stride` and zero `padding` (p = i k_w + j
    for kernel offset (i, j); l = row-major output position). GAP: x (N, C, H, W), one window
    over the whole map (p = the map position). LINEAR: x (N, F), zero-padded to 4 C' features,
    feature f on row channel f // 4 of kernel position f % 4.
    """
    import torch
    import torch.nn.functional as F

    if layer.kind is LayerKind.LINEAR:
        n, features = x.shape
        rows = _ceil_div(features, LINEAR_KERNEL_ROWS)
        pad = rows * LINEAR_KERNEL_ROWS - features
        x = F.pad(x, (0, pad)) if pad else x
        return (
            x.reshape(n, rows, LINEAR_KERNEL_ROWS)
            .permute(2, 0, 1)
            .reshape(LINEAR_KERNEL_ROWS, n, 1, rows)
        )
    n, c = x.shape[:2]
    if layer.kind is LayerKind.GAP:
        return x.reshape(n, c, -1).permute(2, 0, 1).reshape(-1, n, 1, c)
    kh, kw = layer.kernel
    ho, wo = layer.out_hw
    xp = F.pad(x, (padding, padding, padding, padding)) if padding else x
    out = torch.empty((kh * kw, n, ho, wo, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            view = xp[
                :, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride
            ]
            out[i * kw + j].copy_(view.permute(0, 2, 3, 1))
    return out.reshape(kh * kw, n, ho * wo, c)


def active_pe_operations(layer: Layer, arch: Architecture, patches: torch.Tensor) -> torch.Tensor:
    """Active PE operations per image, (N,) int64, from binary input rows (P, N, L, C)
    (`layer_patches`).

    A PE operation (output column group, input row group, output position) is active if some
    row of its group spiked in that position's window; kernel_split groups are C_in channel
    groups across all k_h k_w positions (one SpikeSim PE), unrolled groups cut the flattened
    P C_in rows. Column groups: ceil(C_out / cols), as SpikeSim counts them.
    """
    import torch
    import torch.nn.functional as F

    positions, n, positions_out, channels = patches.shape
    rows = arch.crossbar.rows
    spiking = patches != 0
    if arch.mapping.style is MappingStyle.KERNEL_SPLIT:
        groups = _ceil_div(channels, rows)
        any_pos = spiking.any(dim=0)  # (N, L, C)
        pad = groups * rows - channels
        if pad:
            any_pos = F.pad(any_pos, (0, pad))
        active = any_pos.reshape(n, positions_out, groups, rows).any(dim=3)
    else:
        flat = spiking.permute(1, 2, 0, 3).reshape(n, positions_out, positions * channels)
        groups = _ceil_div(positions * channels, rows)
        pad = groups * rows - positions * channels
        if pad:
            flat = F.pad(flat, (0, pad))
        active = flat.reshape(n, positions_out, groups, rows).any(dim=3)
    col_groups = _ceil_div(spikesim_geometry(layer).out_channels, arch.crossbar.cols)
    return active.sum(dim=(1, 2)).to(torch.int64) * col_groups
