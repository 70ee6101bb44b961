"""Mapping: layers -> crossbars -> PEs -> tiles -> mesh coordinates.

A layer is mapped in SpikeSim's crossbar geometry (`hwsim.hw.geometry.spikesim_geometry`: a GAP
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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.graph import Layer, LayerGraph, LayerKind
from hwsim.hw.arch import Architecture, MappingStyle, Placement
from hwsim.hw.geometry import LINEAR_KERNEL_ROWS, spikesim_geometry


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
    """A whole network (`graph`) on the chip; `tile_coords[i]` is tile i's (row, col) on the
    mesh."""

    arch: Architecture
    graph: LayerGraph
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


def map_network(arch: Architecture, graph: LayerGraph) -> Mapping:
    """Map the layers of `graph` onto `arch` (module docstring)."""
    rows, cols = arch.crossbar.rows, arch.crossbar.cols
    per_xbar = arch.outputs_per_crossbar
    cells_per_weight = arch.device.cells_per_weight
    ref_cols = arch.device.reference_columns
    style = arch.mapping.style
    pe_cursor = 0
    staged: list[dict] = []
    for layer in graph.layers:
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
        graph=graph,
        layers=tuple(LayerMapping(**s) for s in staged),
        tiles=tiles,
        mesh_shape=mesh,
        tile_coords=tile_coords,
        fusion_unit_coord=(int(coords[tiles, 0]), int(coords[tiles, 1])),
    )


def input_row_groups(dst: LayerMapping, channel: int, arch: Architecture) -> list[int]:
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
