"""The simulated chip's resources, from the mapping: one node per active layer (its PEs and
neuron units), the fusion unit, the spike edges between them with their input buffers, and the
NoC flows of each edge on the mesh's directed links.

Nodes. A layer node performs one job per image and timestep: its PE operations, ceil(ops /
PEs) in sequence on each of its PEs, Architecture.pe_operation_cycles each (crossbar read, the
adc.columns_per_adc conversion rounds, shift-add and accumulate within them), then its neuron
updates, ceil(neurons / (pe.neuron_units_per_pe x PEs)) x timing.neuron_cycles, plus
neuron_leak.cycles per update for a population that multiplies (`hwsim.hw.timing.
neuron_job_cycles`). A pooling layer's node (`hwsim.hw.pooling`) is its tile's pooling units: one
server (`pes` 1) with no PE operations (its workload's ops are 0, as the mapping's), its job
`hwsim.hw.pooling.pool_cycles` plus its neurons' cycles (none for a MAX pool), both in
`neuron_cycles`, the per-job cycles that do not depend on the activity. The fusion unit
node takes `decision_cycles` per image and timestep plus its counters' cycles,
fusion_unit.counter_cycles_per_spike x the larger of the IC's and the FC's spikes (the two
banks count in parallel).

Edges. Each spike edge (`LayerGraph.spike_edges`) between active nodes has an input buffer at
its consumer holding `capacity` timesteps of the producer's spikes
(buffers.input_buffer_timesteps, or as many C_in H_in W_in-bit input bitmaps as its share of
the tile buffers holds, at least one: `input_buffer_bits`, the whole buffers of its tiles, or
with buffers.tile_buffer_sharing `shared` its PEs' share of each; the fusion unit's counters:
`FUSION_COUNTER_TIMESTEPS`). A residual block's skip conv joins its conv2 by an edge without
packets (its partial sums stay in the block), so conv2 waits for it as the analytic model's
`LayerGraph.predecessors` say.

Flows. An edge's spikes travel from each producer channel's home tile to each consumer tile
(`hwsim.hw.noc.channel_flows`), XY routed; `noc.packet` says how many flits a flow's packet of
one image and timestep has: address events, ceil(spikes x channels / C_out) x address flits;
a bitmap, ceil(channels x H_out W_out / flit_width_bits) flits whenever any spike is sent;
plus noc.header_flits per packet.

Partial sums (`partial_sums`, `hwsim.hw.psum`). A layer whose rows span several tiles sends, when
its PE operations of a job are done, one packet per (sending tile, reducer tile) flow of
ceil(ops x bits per operation / flit_width_bits) flits + header, on the same links as the
spikes; its job ends when they have arrived, its reducers have added ceil(ops x vectors per
operation) vectors (partial_sums.accumulate_cycles each) and its neurons are updated.

Off-chip (`offchip`, `hwsim.hw.offchip`): each image's input_cycles before its source layers
may start it (images loaded one after another into a two-image buffer) and output_cycles added
to the fusion unit's job at the image's last step.

Line buffers (`timing.line_buffer`). A layer's job is its output rows in order
(`hwsim.hw.timing.output_rows`: H_out, 1 for a GAP or Linear), each row the job's PE rounds,
operations, spikes and neuron cycles shared out as evenly as integers allow
(`hwsim.hw.timing.row_share`). Edge e's consumer row y needs the producer's rows up to
`edge_need[edge_need_ptr[e] + y]` of the same timestep and frees `edge_release[...]` of them
when it is done (`hwsim.hw.timing.row_window`); its buffer holds `edge_row_capacity[e]`
producer rows: as many rows of C_in H_in W_in / R_p bits as `input_buffer_bits` holds (with
buffers.input_buffer_timesteps: that many timesteps of rows; the fusion unit's counters:
FUSION_COUNTER_TIMESTEPS), at least the rows its windows hold at once
(`RowWindow.min_rows`). A row's spikes leave as one packet per flow: address events as above,
a bitmap of ceil(channels x W_out / flit_width_bits) flits (`flow_bitmap_row_flits`).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from hwsim.hw.arch import BufferSharing, PacketFormat
from hwsim.hw.mapping import ChipMapping
from hwsim.hw.noc import Coord, address_flits, channel_flows, xy_links
from hwsim.hw.offchip import offchip_cost
from hwsim.hw.pooling import pool_cycles
from hwsim.hw.psum import layer_psums
from hwsim.hw.timing import neuron_job_cycles, output_rows, row_window
from hwsim.model.graph import FUSION_UNIT

FUSION_COUNTER_TIMESTEPS = 2
"""Timesteps of head spikes the fusion unit's counters hold: double-buffered, one timestep
counted while the previous one is decided."""


@dataclass(frozen=True, eq=False)
class ChipModel:
    """Arrays the simulator runs on (module docstring). Nodes 0..L-1 are `layer_names` in graph
    order, node L the fusion unit. Edges e: `edge_src[e]` -> `edge_dst[e]` (node indices),
    `edge_capacity[e]` timesteps; flows of edge e are `edge_flow_ptr[e]:edge_flow_ptr[e + 1]`,
    flow f crossing links `flow_links[flow_link_ptr[f]:flow_link_ptr[f + 1]]` (indices into
    `links`), with `flow_flits_per_spike[f]` (address events) or `flow_bitmap_flits[f]`
    (bitmap) flits per packet before the header. Cycles are clock cycles of `clock_mhz`."""

    layer_names: tuple[str, ...]
    clock_mhz: float
    pes: np.ndarray  # (L,) int64
    pe_operation_cycles: int
    neuron_cycles: np.ndarray  # (L,) int64: neuron-update (and pooling-unit) cycles of one job
    decision_cycles: int
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_capacity: np.ndarray
    edge_flow_ptr: np.ndarray
    flow_link_ptr: np.ndarray
    flow_links: np.ndarray
    flow_flits_per_spike: np.ndarray  # float64
    flow_bitmap_flits: np.ndarray  # int64
    header_flits: int
    counter_cycles: int  # the fusion unit's counting cycles per head spike (max of IC and FC)
    hop_cycles: int  # router + link latency of one hop
    router_buffer_flits: int  # 0: unbounded
    links: tuple[tuple[Coord, Coord], ...]
    # partial sums (hwsim.hw.psum): flows of layer node v are psum_flow_ptr[v]:[v + 1], flow f
    # crossing links flow_links[psum_flow_link_ptr[f]:[f + 1]] with psum_flits_per_op[f] flits
    # per PE operation; psum_vectors_per_op[v] vectors the busiest reducer adds per operation
    psum_flow_ptr: np.ndarray | None = None  # (L + 1,) int64; None: no partial sums
    psum_flow_link_ptr: np.ndarray | None = None
    psum_flow_links: np.ndarray | None = None
    psum_flits_per_op: np.ndarray | None = None  # float64
    psum_vectors_per_op: np.ndarray | None = None  # (L,) float64
    accumulate_cycles: int = 0
    input_cycles: int = 0  # off-chip input of one image (hwsim.hw.offchip)
    output_cycles: int = 0  # off-chip result of one image
    # line buffers (module docstring); None: a job is a whole timestep (one row per job)
    node_rows: np.ndarray | None = None  # (L,) int64: output rows of each layer's job
    edge_need_ptr: np.ndarray | None = None  # (edges + 1,) into edge_need / edge_release
    edge_need: np.ndarray | None = None  # last producer row each consumer row needs
    edge_release: np.ndarray | None = None  # producer rows each consumer row frees
    edge_row_capacity: np.ndarray | None = None  # (edges,) producer rows a buffer holds
    flow_bitmap_row_flits: np.ndarray | None = None  # (flows,) bitmap flits of one row

    @property
    def line_buffer(self) -> bool:
        """Whether layers work row by row (module docstring)."""
        return self.node_rows is not None

    @property
    def fusion_node(self) -> int:
        return len(self.layer_names)

    @property
    def nodes(self) -> int:
        return len(self.layer_names) + 1

    def node_name(self, node: int) -> str:
        return FUSION_UNIT if node == self.fusion_node else self.layer_names[node]


def input_buffer_bits(mapping: ChipMapping, consumer: str) -> float:
    """Tile-buffer bits `consumer`'s input spikes may fill: its tiles' whole buffers
    (`per_consumer`), or (`shared`) on each of its tiles the share of its PEs among the PEs
    there of the layers that receive spikes (a tile's buffer split among its consumers)."""
    buffers = mapping.arch.buffers
    layer = mapping.layer(consumer)
    if buffers.tile_buffer_sharing is BufferSharing.PER_CONSUMER:
        return float(buffers.tile_buffer_bits * len(layer.tiles))
    receivers = {dst for _, dst in mapping.graph.spike_edges()}
    pes = np.zeros(mapping.tiles)
    for m in mapping.layers:
        if m.name in receivers:
            np.add.at(pes, m.pe_tiles, 1)
    own = np.zeros(mapping.tiles)
    np.add.at(own, layer.pe_tiles, 1)
    share = np.divide(own, pes, out=np.zeros_like(own), where=pes > 0)
    return float(buffers.tile_buffer_bits * share.sum())


def input_buffer_timesteps(mapping: ChipMapping, consumer: str) -> int:
    """Timesteps of input spikes `consumer`'s buffer holds (module docstring)."""
    fixed = mapping.arch.buffers.input_buffer_timesteps
    if fixed is not None:
        return fixed
    c, h, w = mapping.layer(consumer).layer.in_shape
    bits = input_buffer_bits(mapping, consumer)
    return max(1, int(bits // max(1, c * h * w)))


def input_buffer_rows(mapping: ChipMapping, consumer: str, producer_rows: int) -> int:
    """Producer rows (of `producer_rows` per timestep) `consumer`'s line buffer holds (module
    docstring), before the minimum its windows need."""
    fixed = mapping.arch.buffers.input_buffer_timesteps
    if fixed is not None:
        return fixed * producer_rows
    c, h, w = mapping.layer(consumer).layer.in_shape
    bits = input_buffer_bits(mapping, consumer)
    return int(bits * producer_rows // max(1, c * h * w))


def chip_model(
    mapping: ChipMapping, active: Collection[str], decision_cycles: int, ideal_noc: bool = False
) -> ChipModel:
    """The chip of `mapping` with only the layers in `active` working (a method's layers) and a
    fusion unit of `decision_cycles` per image and timestep. `ideal_noc`: every flow arrives
    in zero cycles (for the NoC's share of latency)."""
    arch = mapping.arch
    names = tuple(n for n in mapping.graph.names if n in set(active))
    index = {n: i for i, n in enumerate(names)}
    fusion = len(names)
    pes = np.array([max(mapping.layer(n).pes, 1) for n in names], np.int64)  # a pool: 1 unit
    neuron_cycles = np.array(
        [pool_cycles(arch, mapping.layer(n).layer) + neuron_job_cycles(mapping, n) for n in names],
        np.int64,
    )
    flows = channel_flows(mapping)
    link_index: dict[tuple[Coord, Coord], int] = {}
    src, dst, cap, edge_ptr = [], [], [], [0]
    link_ptr, link_ids, per_spike, bitmap = [0], [], [], []
    noc = arch.noc
    graph = mapping.graph
    joins = [  # a residual skip conv's partial sums join its block's conv2 inside the block
        (p, n) for n in names for p in graph.predecessors(n) if (p, n) not in graph.spike_edges()
    ]
    lines = arch.timing.line_buffer
    rows = {n: output_rows(mapping.layer(n).layer) for n in names}
    need_ptr, need, release, row_cap, bitmap_row = [0], [], [], [], []
    for producer, consumer in graph.spike_edges() + joins:
        if producer not in index or (consumer != FUSION_UNIT and consumer not in index):
            continue
        src.append(index[producer])
        dst.append(fusion if consumer == FUSION_UNIT else index[consumer])
        if consumer == FUSION_UNIT:
            cap.append(FUSION_COUNTER_TIMESTEPS)
        else:
            cap.append(input_buffer_timesteps(mapping, consumer))
        if lines:
            into = None if consumer == FUSION_UNIT else mapping.layer(consumer).layer
            window = row_window(into, rows[producer], join=(producer, consumer) in joins)
            need.extend(window.last.tolist())
            release.extend(window.release.tolist())
            need_ptr.append(len(need))
            held = cap[-1] * rows[producer]
            if into is not None:
                held = input_buffer_rows(mapping, consumer, rows[producer])
            row_cap.append(max(held, window.min_rows))
        if (producer, consumer) in joins:  # no packet: the sums stay in the block
            edge_ptr.append(len(per_spike))
            continue
        layer = mapping.layer(producer)
        positions = layer.layer.out_hw[0] * layer.layer.out_hw[1]
        per_row = positions // rows[producer]  # a line buffer's row of the map
        flits = address_flits(mapping, producer)
        for (home, dest), channels in sorted(flows[producer][consumer].items()):
            route = [] if ideal_noc else xy_links(home, dest)
            if not route:
                continue
            for link in route:
                link_ids.append(link_index.setdefault(link, len(link_index)))
            link_ptr.append(len(link_ids))
            per_spike.append(channels / layer.outputs * flits)
            bitmap.append(math.ceil(channels * positions / noc.flit_width_bits))
            bitmap_row.append(math.ceil(channels * per_row / noc.flit_width_bits))
        edge_ptr.append(len(per_spike))
    psum_ptr, psum_link_ptr, psum_links, psum_flits, psum_vectors = [0], [0], [], [], []
    if arch.partial_sums is not None:
        for n in names:
            p = layer_psums(mapping, mapping.layer(n))
            ops = max(p.pe_operations, 1)
            for f in p.flows:
                route = [] if ideal_noc else xy_links(f.src, f.dst)
                if not route:
                    continue
                for link in route:
                    psum_links.append(link_index.setdefault(link, len(link_index)))
                psum_link_ptr.append(len(psum_links))
                psum_flits.append(f.flits / noc.flit_width_bits / ops)
            psum_ptr.append(len(psum_flits))
            psum_vectors.append(p.vectors_per_reducer / ops)
    io = offchip_cost(arch, graph)
    address = noc.packet is PacketFormat.ADDRESS_EVENT

    def arr(values: list, dtype: type) -> np.ndarray:
        out = np.asarray(values, dtype)
        out.flags.writeable = False
        return out

    return ChipModel(
        layer_names=names,
        clock_mhz=arch.clock_mhz,
        pes=arr(pes.tolist(), np.int64),
        pe_operation_cycles=arch.pe_operation_cycles,
        neuron_cycles=arr(neuron_cycles.tolist(), np.int64),
        decision_cycles=int(decision_cycles),
        edge_src=arr(src, np.int64),
        edge_dst=arr(dst, np.int64),
        edge_capacity=arr(cap, np.int64),
        edge_flow_ptr=arr(edge_ptr, np.int64),
        flow_link_ptr=arr(link_ptr, np.int64),
        flow_links=arr(link_ids, np.int64),
        flow_flits_per_spike=arr(per_spike if address else [0.0] * len(per_spike), np.float64),
        flow_bitmap_flits=arr([0] * len(bitmap) if address else bitmap, np.int64),
        header_flits=noc.header_flits,
        counter_cycles=0 if arch.fusion_unit is None else arch.fusion_unit.counter_cycles_per_spike,
        hop_cycles=noc.router_latency_cycles + noc.link_latency_cycles,
        router_buffer_flits=noc.router_buffer_flits or 0,
        links=tuple(sorted(link_index, key=link_index.__getitem__)),
        psum_flow_ptr=None if arch.partial_sums is None else arr(psum_ptr, np.int64),
        psum_flow_link_ptr=arr(psum_link_ptr, np.int64),
        psum_flow_links=arr(psum_links, np.int64),
        psum_flits_per_op=arr(psum_flits, np.float64),
        psum_vectors_per_op=arr(psum_vectors, np.float64),
        accumulate_cycles=0 if arch.partial_sums is None else arch.partial_sums.accumulate_cycles,
        input_cycles=io.input_cycles,
        output_cycles=io.output_cycles,
        node_rows=arr([rows[n] for n in names], np.int64) if lines else None,
        edge_need_ptr=arr(need_ptr, np.int64) if lines else None,
        edge_need=arr(need, np.int64) if lines else None,
        edge_release=arr(release, np.int64) if lines else None,
        edge_row_capacity=arr(row_cap, np.int64) if lines else None,
        flow_bitmap_row_flits=(
            arr([0] * len(bitmap_row) if address else bitmap_row, np.int64) if lines else None
        ),
    )
