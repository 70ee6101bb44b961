"""ChipMapping: layers -> crossbars -> PEs -> tiles -> mesh coordinates. The one description of the
chip that energy, area, timing, the NoC and the functional mode all read.

A layer is mapped in SpikeSim's crossbar geometry (`hwsim.hw.geometry.spikesim_geometry`: a GAP
layer is a (H, W) kernel over C channels, a Linear layer a (4, 1) kernel over ceil(F / 4)
channels, feature f on row channel f // 4 of kernel position f % 4). Its weight matrix has P =
k_h k_w kernel positions x C_in channel rows and C_out outputs.

* Rows. `kernel_split` (SpikeSim): each kernel position has its own crossbars; its C_in rows
  are cut into G_ch = ceil(C_in / rows) channel groups, so the layer has P G_ch row groups,
  row group r = g P + p (channel group g, kernel position p). `unrolled`: the P C_in rows
  (index p C_in + c) are cut into ceil(P C_in / rows) row groups.
* Columns. One output channel takes `device.columns_per_weight` columns (1 for SpikeSim's
  digital sign with cells slicing; S bit slices under columns slicing, times two for a
  differential pair); a crossbar also holds `device.reference_columns` reference columns
  (offset encoding), so it holds O = (cols - reference) // columns_per_weight outputs and a
  layer needs ceil(C_out / O) column groups.
* PE operation (what SpikeSim charges, what timing schedules, what one ADC conversion round
  covers): one output position x one column group x, for `kernel_split`, one channel group
  read at all P kernel positions (SpikeSim's PE: the P crossbars' columns summed in analog
  and converted once), for `unrolled`, one row group (one crossbar). `pe_operations` counts
  them per timestep, every input spiking; `crossbars_per_operation` is P or 1.
* Crossbars: one per (column group, row group), enumerated column group first, then row group;
  they fill PEs of `pe.crossbars_per_pe` in that order (null: P for kernel_split, so that a PE
  is SpikeSim's P crossbars of one (channel group, column group); the layer's row groups for
  unrolled). A PE holds one layer.
* Tiles: PEs fill tiles of `pe.pes_per_tile` consecutively across layer boundaries (SpikeSim's
  tile count, ceil(sum of PEs / pes_per_tile)), first the backbone and final-classifier layers
  in graph order, then the internal classifiers' heads, so that what the final classifier's
  path occupies does not depend on which IC is mapped.
* Mesh: slots in placement order are the tiles that hold a backbone or final-classifier PE,
  then the IC + fusion unit module, then the tiles that hold only IC-head PEs. Slot k of a mesh
  with `cols` columns is at (row, col) = (k // cols, k % cols) for `row_major`; `snake`
  reverses every odd row (col = cols - 1 - k % cols), so consecutive slots are always
  neighbours. A mesh not given in `noc` has cols = ceil(sqrt(slots of the backbone, FC head
  and fusion unit)) and as many rows as all slots need (IC tiles add rows, never move a slot).
* Utilisation = used cells / available cells, used cells being the rows x columns (weights'
  columns and reference columns) a layer's matrix occupies in each crossbar, zero weights
  included (a GAP layer's matrix is diagonal but occupies its full C x C block per position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.hw.arch import Architecture, MappingStyle, Placement
from hwsim.hw.geometry import LINEAR_KERNEL_ROWS, spikesim_geometry
from hwsim.model.graph import FC_HEAD, Layer, LayerGraph, LayerKind


class MappingError(ValueError):
    """A network that does not fit the architecture (e.g. a fixed mesh that is too small)."""


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, eq=False)
class LayerMapping:
    """One layer on crossbars. Crossbar i is (column group i // row_groups, row group
    i % row_groups) and sits in PE `first_pe + i // crossbars_per_pe`."""

    layer: Layer
    style: MappingStyle
    rows: int  # crossbar rows
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
    used_rows: int  # rows holding weights, summed over the layer's crossbars
    pool_tile: int | None = None  # a pooling layer: the tile whose pooling units run it

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def is_pool(self) -> bool:
        """Whether the layer runs on a tile's pooling units (no crossbars, no PEs)."""
        return self.pool_tile is not None

    @property
    def crossbars(self) -> int:
        return self.row_groups * self.col_groups

    @property
    def pes(self) -> int:
        return len(self.pe_tiles)

    @property
    def channel_groups(self) -> int:
        """kernel_split: ceil(C_in / rows) channel groups per kernel position; unrolled: the
        row groups (a row group there mixes positions)."""
        if self.style is MappingStyle.KERNEL_SPLIT:
            return self.row_groups // self.positions
        return self.row_groups

    @property
    def crossbars_per_operation(self) -> int:
        """Crossbars one PE operation reads: P (kernel_split) or 1 (unrolled)."""
        return self.positions if self.style is MappingStyle.KERNEL_SPLIT else 1

    @property
    def output_positions(self) -> int:
        h, w = spikesim_geometry(self.layer).out_hw
        return h * w

    @property
    def pe_operations(self) -> int:
        """PE operations per timestep with every input spiking: output positions x channel
        groups x column groups (SpikeSim's ceil(C_out/X) ceil(C_in/X) H_out W_out when a
        crossbar holds X outputs)."""
        return self.output_positions * self.channel_groups * self.col_groups

    @property
    def crossbar_reads(self) -> int:
        """Crossbar read-outs per timestep with every input spiking: pe_operations x
        crossbars_per_operation."""
        return self.pe_operations * self.crossbars_per_operation

    @property
    def tiles(self) -> tuple[int, ...]:
        """Tiles holding at least one of this layer's PEs, ascending (a pooling layer: its
        pooling unit's tile)."""
        if self.pool_tile is not None:
            return (self.pool_tile,)
        return tuple(int(t) for t in np.unique(self.pe_tiles))

    @property
    def utilisation(self) -> float:
        """Used cells / available cells of the layer's crossbars."""
        return self.used_cells / self.available_cells if self.available_cells else 0.0

    def crossbar_tiles(self) -> np.ndarray:
        """(col_groups, row_groups) tile index of every crossbar; a pooling layer: (1, 1), its
        pooling unit's tile (where its spikes arrive and leave)."""
        if self.pool_tile is not None:
            return np.full((1, 1), self.pool_tile, np.int64)
        index = np.arange(self.crossbars) // self.crossbars_per_pe
        return self.pe_tiles[index].reshape(self.col_groups, self.row_groups)

    def input_row_groups(self, channel: int) -> list[int]:
        """Row groups whose rows carry input channel `channel` of the producer (a Linear's
        feature f: row channel f // 4 of kernel position f % 4); a pooling layer: [0], its
        pooling unit."""
        if self.pool_tile is not None:
            return [0]
        row_channel, positions = channel, list(range(self.positions))
        if self.layer.kind is LayerKind.LINEAR:
            row_channel = channel // LINEAR_KERNEL_ROWS
            positions = [channel % LINEAR_KERNEL_ROWS]
        if self.style is MappingStyle.KERNEL_SPLIT:
            g = row_channel // self.rows
            return sorted({g * self.positions + p for p in positions})
        return sorted({(p * self.channels + row_channel) // self.rows for p in positions})


@dataclass(frozen=True, eq=False)
class ChipMapping:
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

    def pe_operations(self) -> np.ndarray:
        """(L,) PE operations per timestep of each layer, every input spiking."""
        return np.array([m.pe_operations for m in self.layers], np.int64)

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
                "pe_operations": [m.pe_operations for m in self.layers],
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


def _is_ic_head(layer: Layer) -> bool:
    return layer.head is not None and layer.head != FC_HEAD


def _layer_rows(arch: Architecture, positions: int, channels: int) -> list[int]:
    """Rows each row group of a layer uses, in row-group order (module docstring)."""
    rows = arch.crossbar.rows
    if arch.mapping.style is MappingStyle.KERNEL_SPLIT:
        per_group = [min(rows, channels - g * rows) for g in range(_ceil_div(channels, rows))]
        return [r for r in per_group for _ in range(positions)]  # r = g P + p
    total = positions * channels
    return [min(rows, total - g * rows) for g in range(_ceil_div(total, rows))]


def _pool_mapping(arch: Architecture, layer: Layer, first_pe: int, tile: int) -> dict:
    """The `LayerMapping` fields of a pooling layer: no crossbars, no PEs, on `tile`'s pooling
    units (one group holding all its outputs)."""
    pe_tiles = np.zeros(0, np.int64)
    pe_tiles.flags.writeable = False
    return dict(
        layer=layer,
        style=arch.mapping.style,
        rows=arch.crossbar.rows,
        positions=layer.kernel[0] * layer.kernel[1],
        channels=layer.in_channels,
        outputs=layer.out_channels,
        row_groups=0,
        col_groups=0,
        outputs_per_crossbar=max(layer.out_channels, 1),
        crossbars_per_pe=1,
        first_pe=first_pe,
        pe_tiles=pe_tiles,
        used_cells=0,
        available_cells=0,
        used_rows=0,
        pool_tile=tile,
    )


def map_network(arch: Architecture, graph: LayerGraph) -> ChipMapping:
    """Map the layers of `graph` onto `arch` (module docstring)."""
    rows, cols = arch.crossbar.rows, arch.crossbar.cols
    per_xbar = arch.outputs_per_crossbar
    columns_per_weight = arch.device.columns_per_weight
    ref_cols = arch.device.reference_columns
    style = arch.mapping.style
    # PEs are numbered in placement order: backbone and FC head first, then the IC heads
    order = [g for g in graph.layers if not _is_ic_head(g)]
    order += [g for g in graph.layers if _is_ic_head(g)]
    staged: dict[str, dict] = {}
    pe_cursor = 0
    base_pes = 0
    pool_tiles: dict[str, int] = {}
    for layer in order:
        if layer.pool is not None:
            if arch.pooling is None:
                raise MappingError(
                    f"{arch.name}: layer {layer.name!r} is a local {layer.pool} pooling layer and"
                    " the architecture has no `pooling` section (the tile's pooling unit)"
                )
            pool_tiles[layer.name] = max(pe_cursor - 1, 0) // arch.pe.pes_per_tile
            staged[layer.name] = _pool_mapping(arch, layer, pe_cursor, pool_tiles[layer.name])
            continue
        geom = spikesim_geometry(layer)
        positions = geom.kernel[0] * geom.kernel[1]
        channels, outputs = geom.in_channels, geom.out_channels
        group_rows = _layer_rows(arch, positions, channels)
        row_groups = len(group_rows)
        col_groups = _ceil_div(outputs, per_xbar)
        group_outs = [min(per_xbar, outputs - g * per_xbar) for g in range(col_groups)]
        used = sum(group_rows) * sum(o * columns_per_weight + ref_cols for o in group_outs)
        crossbars = row_groups * col_groups
        default_cpp = positions if style is MappingStyle.KERNEL_SPLIT else row_groups
        cpp = arch.pe.crossbars_per_pe or default_cpp
        pes = _ceil_div(crossbars, cpp)
        pe_tiles = (pe_cursor + np.arange(pes)) // arch.pe.pes_per_tile
        pe_tiles.flags.writeable = False
        staged[layer.name] = dict(
            layer=layer,
            style=style,
            rows=rows,
            positions=positions,
            channels=channels,
            outputs=outputs,
            row_groups=row_groups,
            col_groups=col_groups,
            outputs_per_crossbar=per_xbar,
            crossbars_per_pe=cpp,
            first_pe=pe_cursor,
            pe_tiles=pe_tiles,
            used_cells=used,
            available_cells=crossbars * rows * cols,
            used_rows=sum(group_rows) * col_groups,
        )
        pe_cursor += pes
        if not _is_ic_head(layer):
            base_pes = pe_cursor
    tiles = _ceil_div(pe_cursor, arch.pe.pes_per_tile)
    base_tiles = _ceil_div(base_pes, arch.pe.pes_per_tile)
    for name, tile in pool_tiles.items():  # a pooling layer's tile exists even without PEs
        tiles = max(tiles, tile + 1)
        if not _is_ic_head(graph.layer(name)):
            base_tiles = max(base_tiles, tile + 1)
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
        mesh_cols = math.ceil(math.sqrt(base_tiles + 1))
        mesh = (_ceil_div(slots, mesh_cols), mesh_cols)
    coords = slot_coords(slots, mesh, arch.mapping.placement)
    tile_slot = np.arange(tiles) + (np.arange(tiles) >= base_tiles)  # the fusion unit's slot
    tile_coords = coords[tile_slot].copy()
    tile_coords.flags.writeable = False
    return ChipMapping(
        arch=arch,
        graph=graph,
        layers=tuple(LayerMapping(**staged[g.name]) for g in graph.layers),
        tiles=tiles,
        mesh_shape=mesh,
        tile_coords=tile_coords,
        fusion_unit_coord=(int(coords[base_tiles, 0]), int(coords[base_tiles, 1])),
    )
