"""Mapping: layers -> crossbars -> PEs -> tiles -> mesh coordinates.

A layer is mapped in SpikeSim's crossbar geometry (`hwsim.hw.energy.spikesim_geometry`: a GAP
layer is a (H, W) kernel over C channels, a Linear layer a (4, 1) kernel over ceil(F / 4)
channels, feature f on row channel f // 4 of kernel position f % 4). Its weight matrix has P =
k_h k_w kernel positions x C_in channel rows and C_out outputs.

* Rows. `kernel_split` (SpikeSim): each kernel position has its own crossbars; its C_in rows
  are cut into row groups of `crossbar.rows`: P x ceil(C_in / rows) row groups.
  `unrolled`: the P C_in rows (index p C_in + c) are cut into ceil(P C_in / rows) row groups.
* Columns. One output channel takes `device.cells_per_weight` columns (its slices, times two
  for a differential pair); a crossbar also holds `device.reference_columns` reference columns
  (offset encoding), so it holds O = (cols - reference) // cells_per_weight outputs and a
  layer needs ceil(C_out / O) column groups.
* Crossbars: one per (column group, row group), enumerated column group first, then row group
  (kernel_split: kernel position, then channel group); they fill PEs of `pe.crossbars_per_pe`
  in that order (null: P for kernel_split, so that a PE is SpikeSim's k_h k_w crossbars of one
  (input, output) channel group; the layer's row groups for unrolled). A PE holds one layer.
* Tiles: PEs fill tiles of `pe.pes_per_tile` consecutively, across layer boundaries, in layer
  order (as SpikeSim counts tiles: ceil(sum of PEs / pes_per_tile)).
* Mesh: tile i takes placement slot i and the IC + fusion unit module the next slot. Slot k of
  a mesh with `cols` columns is at (row, col) = (k // cols, k % cols) for `row_major`; `snake`
  reverses every odd row (col = cols - 1 - k % cols), so consecutive slots are always
  neighbours. A mesh not given in `noc` is sized cols = ceil(sqrt(slots)),
  rows = ceil(slots / cols).
* Utilisation = used cells / available cells, used cells being the rows x columns (weights'
  cells and reference columns) a layer's matrix occupies in each crossbar, zero weights
  included (a GAP layer's matrix is diagonal but occupies its full C x C block per position).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.table import Table

from hwsim.graph import FC_HEAD, Layer, LayerKind
from hwsim.hw.arch import Architecture, MappingStyle, Placement
from hwsim.hw.energy import LINEAR_KERNEL_ROWS, spikesim_geometry


class MappingError(ValueError):
    """A network that does not fit the architecture (e.g. a fixed mesh that is too small)."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, eq=False)
class LayerMapping:
    """One layer on crossbars. Crossbar i is (column group i // row_groups, row group
    i % row_groups) and sits in PE `first_pe + i // crossbars_per_pe`."""

    layer: Layer
    positions: int  # P kernel positions
    channels: int  # C_in rows per kernel position (SpikeSim geometry)
    outputs: int  # C_out
    row_groups: int  # crossbar row groups of the layer (all positions)
    col_groups: int
    outputs_per_crossbar: int
    crossbars_per_pe: int
    first_pe: int
    pe_tiles: np.ndarray  # (pes,) tile of each PE
    used_cells: int
    available_cells: int

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def crossbars(self) -> int:
        return self.row_groups * self.col_groups

    @property
    def pes(self) -> int:
        return len(self.pe_tiles)

    @property
    def tiles(self) -> tuple[int, ...]:
        """Tiles holding at least one of this layer's PEs, ascending."""
        return tuple(int(t) for t in np.unique(self.pe_tiles))

    @property
    def utilisation(self) -> float:
        """Used cells / available cells of the layer's crossbars."""
        return self.used_cells / self.available_cells if self.available_cells else 0.0

    def crossbar_tiles(self) -> np.ndarray:
        """(col_groups, row_groups) tile index of every crossbar."""
        index = np.arange(self.crossbars) // self.crossbars_per_pe
        return self.pe_tiles[index].reshape(self.col_groups, self.row_groups)


@dataclass(frozen=True, eq=False)
class Mapping:
    """A whole network on the chip; `tile_coords[i]` is tile i's (row, col) on the mesh."""

    arch: Architecture
    layers: tuple[LayerMapping, ...]
    tiles: int
    mesh_shape: tuple[int, int]
    tile_coords: np.ndarray  # (tiles, 2) int
    fusion_unit_coord: tuple[int, int]

    def layer(self, name: str) -> LayerMapping:
        for m in self.layers:
            if m.name == name:
                return m
        raise KeyError(f"no layer {name!r} in the mapping")

    @property
    def crossbars(self) -> int:
        return sum(m.crossbars for m in self.layers)

    @property
    def pes(self) -> int:
        return sum(m.pes for m in self.layers)

    @property
    def used_cells(self) -> int:
        return sum(m.used_cells for m in self.layers)

    @property
    def available_cells(self) -> int:
        return sum(m.available_cells for m in self.layers)

    @property
    def utilisation(self) -> float:
        """Used cells / available cells over every mapped crossbar."""
        return self.used_cells / self.available_cells if self.available_cells else 0.0

    def tile_pes(self) -> np.ndarray:
        """(tiles,) PEs mapped onto each tile."""
        counts = np.zeros(self.tiles, np.int64)
        for m in self.layers:
            np.add.at(counts, m.pe_tiles, 1)
        return counts

    def hops(self, a: tuple[int, int] | np.ndarray, b: tuple[int, int] | np.ndarray) -> int:
        """XY (dimension-ordered) routing hops between mesh coordinates: |dr| + |dc|."""
        return int(abs(int(a[0]) - int(b[0])) + abs(int(a[1]) - int(b[1])))

    def to_frame(self) -> pd.DataFrame:
        """One row per layer: geometry, crossbars, PEs, tiles, cells and utilisation."""
        return pd.DataFrame(
            {
                "layer": [m.name for m in self.layers],
                "kind": [str(m.layer.kind) for m in self.layers],
                "positions": [m.positions for m in self.layers],
                "row_groups": [m.row_groups for m in self.layers],
                "col_groups": [m.col_groups for m in self.layers],
                "crossbars": [m.crossbars for m in self.layers],
                "pes": [m.pes for m in self.layers],
                "first_tile": [m.tiles[0] for m in self.layers],
                "last_tile": [m.tiles[-1] for m in self.layers],
                "used_cells": [m.used_cells for m in self.layers],
                "available_cells": [m.available_cells for m in self.layers],
                "utilisation": [m.utilisation for m in self.layers],
            }
        )


def slot_coords(slots: int, mesh_shape: tuple[int, int], placement: Placement) -> np.ndarray:
    """(slots, 2) mesh coordinates of placement slots 0..slots-1 (module docstring)."""
    _, cols = mesh_shape
    k = np.arange(slots)
    rows, col = k // cols, k % cols
    if placement is Placement.SNAKE:
        col = np.where(rows % 2 == 1, cols - 1 - col, col)
    return np.stack([rows, col], axis=1).astype(np.int64)


def _layer_shape(layer: Layer) -> tuple[int, int, int]:
    geom = spikesim_geometry(layer)
    return geom.kernel[0] * geom.kernel[1], geom.in_channels, geom.out_channels


def map_network(arch: Architecture, layers: Sequence[Layer]) -> Mapping:
    """Map `layers` (e.g. `hwsim.nets.layer_geometry(spec)`) onto `arch` (module docstring)."""
    rows, cols = arch.crossbar.rows, arch.crossbar.cols
    per_xbar = arch.outputs_per_crossbar
    cells_per_weight = arch.device.cells_per_weight
    ref_cols = arch.device.reference_columns
    style = arch.mapping.style
    pe_cursor = 0
    staged: list[dict] = []
    for layer in layers:
        positions, channels, outputs = _layer_shape(layer)
        if style is MappingStyle.KERNEL_SPLIT:
            groups_per_pos = _ceil_div(channels, rows)
            row_groups = positions * groups_per_pos
            group_rows = [min(rows, channels - g * rows) for g in range(groups_per_pos)]
            group_rows = group_rows * positions
            default_cpp = positions
        else:
            total = positions * channels
            row_groups = _ceil_div(total, rows)
            group_rows = [min(rows, total - g * rows) for g in range(row_groups)]
            default_cpp = row_groups
        col_groups = _ceil_div(outputs, per_xbar)
        group_outs = [min(per_xbar, outputs - g * per_xbar) for g in range(col_groups)]
        used = sum(group_rows) * sum(o * cells_per_weight + ref_cols for o in group_outs)
        crossbars = row_groups * col_groups
        cpp = arch.pe.crossbars_per_pe or default_cpp
        pes = _ceil_div(crossbars, cpp)
        staged.append(
            dict(
                layer=layer,
                positions=positions,
                channels=channels,
                outputs=outputs,
                row_groups=row_groups,
                col_groups=col_groups,
                outputs_per_crossbar=per_xbar,
                crossbars_per_pe=cpp,
                first_pe=pe_cursor,
                pe_tiles=(pe_cursor + np.arange(pes)) // arch.pe.pes_per_tile,
                used_cells=used,
                available_cells=crossbars * rows * cols,
            )
        )
        pe_cursor += pes
    tiles = _ceil_div(pe_cursor, arch.pe.pes_per_tile)
    slots = tiles + 1  # + the IC / fusion-unit module
    if arch.noc.mesh_rows is not None and arch.noc.mesh_cols is not None:
        mesh = (arch.noc.mesh_rows, arch.noc.mesh_cols)
        if mesh[0] * mesh[1] < slots:
            raise MappingError(
                f"{arch.name}: the {mesh[0]} x {mesh[1]} mesh (noc.mesh_rows x noc.mesh_cols)"
                f" has {mesh[0] * mesh[1]} slots; the network needs {tiles} tiles + 1 fusion"
                f" unit = {slots}"
            )
    else:
        mesh_cols = math.ceil(math.sqrt(slots))
        mesh = (_ceil_div(slots, mesh_cols), mesh_cols)
    coords = slot_coords(slots, mesh, arch.mapping.placement)
    for s in staged:
        s["pe_tiles"].flags.writeable = False
    tile_coords = coords[:tiles].copy()
    tile_coords.flags.writeable = False
    return Mapping(
        arch=arch,
        layers=tuple(LayerMapping(**s) for s in staged),
        tiles=tiles,
        mesh_shape=mesh,
        tile_coords=tile_coords,
        fusion_unit_coord=(int(coords[tiles, 0]), int(coords[tiles, 1])),
    )


# ------------------------------------------------------------------------- data flow


FUSION_UNIT = "fusion_unit"
"""Consumer name of the IC + fusion unit module (receives every head's Linear spikes)."""


def layer_edges(layers: Sequence[Layer]) -> list[tuple[str, str]]:
    """Where each layer's output spikes go, as (producer, consumer) layer names.

    Backbone block i's output (conv{i}, or a residual block's conv2, whose neurons are the
    join) feeds block i+1's input layers (its conv, or its skip and conv1) and the GAP of every
    head tapping block i; a residual conv1 feeds its conv2; a GAP feeds its head's Linear; a
    Linear feeds the fusion unit (`FUSION_UNIT`). A skip conv sends partial sums into its
    block's join neurons, not spikes: it has no edge. Backbone layers without a `block` are
    taken as a chain, one block each.
    """
    blocks: dict[int, list[Layer]] = {}
    heads: dict[int, list[Layer]] = {}
    backbone = [g for g in layers if g.head is None]
    numbered = all(g.block is not None for g in backbone)  # else: a plain chain of layers
    for i, layer in enumerate(backbone):
        blocks.setdefault(layer.block if numbered else i, []).append(layer)
    for layer in layers:
        if layer.head is not None:
            heads.setdefault(layer.head, []).append(layer)
    order = sorted(blocks)
    last = order[-1] if order else None

    def output_of(block: int) -> Layer:
        return blocks[block][-1]

    def inputs_of(block: int) -> list[Layer]:
        members = blocks[block]
        if len(members) == 1:
            return members
        return [m for m in members if not m.name.endswith(".conv2")]

    edges: list[tuple[str, str]] = []
    for i, b in enumerate(order):
        members = blocks[b]
        if len(members) > 1:  # residual block: skip, conv1, conv2
            conv1 = next(m for m in members if m.name.endswith(".conv1"))
            edges.append((conv1.name, output_of(b).name))
        if i + 1 < len(order):
            edges += [(output_of(b).name, m.name) for m in inputs_of(order[i + 1])]
        for head, members_h in heads.items():
            tap = last if head == FC_HEAD else head
            if tap == b:
                edges += [(output_of(b).name, m.name) for m in members_h if m.kind is LayerKind.GAP]
    for members_h in heads.values():
        gap = [m for m in members_h if m.kind is LayerKind.GAP]
        lin = [m for m in members_h if m.kind is LayerKind.LINEAR]
        edges += [(g.name, li.name) for g in gap for li in lin]
        edges += [(li.name, FUSION_UNIT) for li in lin]
    return edges


def input_activations(layers: Sequence[Layer]) -> list[int]:
    """Activations arriving at each layer's input per timestep and image: a CONV's producer's
    output map (`layer_edges`; the first layer, with no producer, is taken as a stride-1
    'same' conv: C_in x H_out x W_out); a GAP's tapped map C x H x W; a LINEAR's features."""
    layers = tuple(layers)
    by_name = {g.name: g for g in layers}
    producer: dict[str, Layer] = {}
    for src, dst in layer_edges(layers):
        if dst in by_name:
            producer[dst] = by_name[src]
    out = []
    for g in layers:
        if g.kind is LayerKind.LINEAR:
            out.append(g.in_channels)
        elif g.kind is LayerKind.GAP:
            out.append(g.in_channels * g.kernel[0] * g.kernel[1])
        elif g.name in producer:
            p = producer[g.name]
            out.append(p.out_channels * p.out_hw[0] * p.out_hw[1])
        else:
            out.append(g.in_channels * g.out_hw[0] * g.out_hw[1])
    return out


def _input_row_groups(dst: LayerMapping, channel: int, arch: Architecture) -> list[int]:
    """Row groups of `dst` whose rows carry input channel `channel` of its producer."""
    rows = arch.crossbar.rows
    row_channel, positions = channel, list(range(dst.positions))
    if dst.layer.kind is LayerKind.LINEAR:  # feature f: row channel f // 4, position f % 4
        row_channel = channel // LINEAR_KERNEL_ROWS
        positions = [channel % LINEAR_KERNEL_ROWS]
    if arch.mapping.style is MappingStyle.KERNEL_SPLIT:
        per_pos = _ceil_div(dst.channels, rows)
        return sorted({p * per_pos + row_channel // rows for p in positions})
    return sorted({(p * dst.channels + row_channel) // rows for p in positions})


@dataclass(frozen=True)
class SpikeRoute:
    """NoC cost of one spike of `producer`: flits per destination and hops summed over every
    destination tile (each consumer tile gets its own unicast copy), averaged over the
    producer's output channels (spikes assumed spread evenly over channels)."""

    producer: str
    consumer: str
    flits_per_spike: int
    hops_per_spike: float


def spike_routes(mapping: Mapping) -> list[SpikeRoute]:
    """Per edge of `layer_edges`: XY hops from the producer's home tile of each output channel
    (the tile of its column group's first crossbar) to every tile holding a consumer crossbar
    fed by that channel, and flits per spike: ceil(address bits / noc.flit_width_bits) with an
    address of ceil(log2(producer neurons)) bits (address-event spikes)."""
    arch = mapping.arch
    by_name = {m.name: m for m in mapping.layers}
    coords = mapping.tile_coords
    routes: list[SpikeRoute] = []
    for src_name, dst_name in layer_edges([m.layer for m in mapping.layers]):
        src = by_name[src_name]
        neurons = src.outputs * src.layer.out_hw[0] * src.layer.out_hw[1]
        address_bits = max(1, math.ceil(math.log2(max(neurons, 2))))
        flits = _ceil_div(address_bits, arch.noc.flit_width_bits)
        src_tiles = src.crossbar_tiles()
        total = 0
        for c in range(src.outputs):
            home = coords[src_tiles[c // src.outputs_per_crossbar, 0]]
            if dst_name == FUSION_UNIT:
                total += mapping.hops(home, mapping.fusion_unit_coord)
                continue
            dst = by_name[dst_name]
            groups = _input_row_groups(dst, c, arch)
            dst_tiles = np.unique(dst.crossbar_tiles()[:, groups])
            total += sum(mapping.hops(home, coords[t]) for t in dst_tiles)
        routes.append(SpikeRoute(src_name, dst_name, flits, total / max(src.outputs, 1)))
    return routes


# ---------------------------------------------------------------------------- report


def mapping_table(mapping: Mapping, title: str | None = None) -> Table:
    """A rich Table: one row per layer (crossbars, PEs, tiles, utilisation) and a total row."""
    arch = mapping.arch
    rows, cols = mapping.mesh_shape
    table = Table(
        title=title
        or (
            f"{arch.name}: {arch.mapping.style.value} mapping, {mapping.tiles} tiles on a"
            f" {rows} x {cols} mesh ({arch.mapping.placement.value}), fusion unit at"
            f" {mapping.fusion_unit_coord}"
        )
    )
    for col in ("layer", "kind", "row groups", "col groups", "crossbars", "PEs", "tiles"):
        table.add_column(col, justify="left" if col in ("layer", "kind") else "right")
    table.add_column("utilisation", justify="right")
    for m in mapping.layers:
        first, last = m.tiles[0], m.tiles[-1]
        table.add_row(
            m.name,
            str(m.layer.kind),
            f"{m.row_groups:,}",
            f"{m.col_groups:,}",
            f"{m.crossbars:,}",
            f"{m.pes:,}",
            f"{first}" if first == last else f"{first}-{last}",
            f"{100 * m.utilisation:.1f}%",
        )
    table.add_row(
        "[bold]total[/]",
        "",
        "",
        "",
        f"[bold]{mapping.crossbars:,}[/]",
        f"[bold]{mapping.pes:,}[/]",
        f"[bold]{mapping.tiles:,}[/]",
        f"[bold]{100 * mapping.utilisation:.1f}%[/]",
    )
    return table
