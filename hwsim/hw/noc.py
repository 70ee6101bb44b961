"""The mesh network-on-chip: XY routes, address-event flits and link loads of the spikes sent.

Each spike of layer p is an address event of ceil(log2(neurons_p)) bits, i.e.
f_p = ceil(bits / noc.flit_width_bits) flits, unicast from the home tile of its output channel
(the tile of its column group's first crossbar) to every tile holding a consumer crossbar fed by
that channel (`LayerGraph.spike_edges`; the IC + fusion unit module for a head's Linear). Spikes
are taken as spread evenly over the output channels. Routing is XY (along the row to the
destination column, then along the column); a route of h hops crosses h directed links.

One computation (`producer_traffic`, per producer and consumer) serves both energy
(`flit_hops`: flit-hops per image and timestep, charged per flit-hop; a method pays only the
edges it uses) and timing (link loads and transfer cycles of each producer's spikes).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from hwsim.hw.activity import LayerActivity
from hwsim.hw.mapping import ChipMapping
from hwsim.model.graph import FUSION_UNIT

Coord = tuple[int, int]
Link = tuple[Coord, Coord]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def xy_links(src: Coord, dst: Coord) -> list[Link]:
    """Directed links of the XY route src -> dst on a mesh of (row, col) coordinates: first
    along the row to the destination column, then along the column; |dr| + |dc| links."""
    r, c = int(src[0]), int(src[1])
    r1, c1 = int(dst[0]), int(dst[1])
    links: list[Link] = []
    while c != c1:
        nc = c + (1 if c1 > c else -1)
        links.append(((r, c), (r, nc)))
        c = nc
    while r != r1:
        nr = r + (1 if r1 > r else -1)
        links.append(((r, c), (nr, c)))
        r = nr
    return links


@dataclass(frozen=True, slots=True)
class NocFlow:
    """`flits` flits sent from mesh coordinate `src` to `dst` (XY routed)."""

    src: Coord
    dst: Coord
    flits: float


def link_loads(flows: Iterable[NocFlow]) -> dict[Link, float]:
    """Flits crossing each directed link, summed over `flows`."""
    loads: dict[Link, float] = {}
    for flow in flows:
        for link in xy_links(flow.src, flow.dst):
            loads[link] = loads.get(link, 0.0) + flow.flits
    return loads


def transfer_cycles(
    flows: Iterable[NocFlow], router_latency_cycles: int, link_latency_cycles: int
) -> int:
    """Cycles for `flows` leaving together to arrive: the longest route's head latency,
    h (router + link) for h hops, plus the busiest link's serialisation: one flit per cycle,
    B - 1 cycles after the first for B = ceil(flits on that link). 0 when no flit leaves its
    tile."""
    flows = [f for f in flows if f.flits > 0 and tuple(f.src) != tuple(f.dst)]
    if not flows:
        return 0
    per_hop = router_latency_cycles + link_latency_cycles
    head = max(len(xy_links(f.src, f.dst)) for f in flows) * per_hop
    busiest = math.ceil(round(max(link_loads(flows).values()), 9))
    return head + busiest - 1


Edge = tuple[str, str]
"""(producer layer, consumer layer or FUSION_UNIT): one spike edge of the graph."""


@dataclass(frozen=True, slots=True)
class EdgeTraffic:
    """One spike edge's NoC traffic per output spike of its producer (evenly spread over the
    producer's channels): flits on each directed link, the longest route, flits x hops."""

    flits_per_spike_by_link: dict[Link, float]
    max_hops: int
    flit_hops_per_spike: float


@dataclass(frozen=True, slots=True)
class ProducerTraffic:
    """A producer's NoC traffic per output spike, by consumer (`edges`), and over all of them:
    `flits_per_spike_by_link` maps each directed link to the flits one (evenly spread) output
    spike puts on it, `max_hops` the longest route, `flit_hops_per_spike` flits x hops."""

    producer: str
    flits_per_spike: int
    edges: dict[str, EdgeTraffic]

    @property
    def flits_per_spike_by_link(self) -> dict[Link, float]:
        loads: dict[Link, float] = {}
        for edge in self.edges.values():
            for link, flits in edge.flits_per_spike_by_link.items():
                loads[link] = loads.get(link, 0.0) + flits
        return loads

    @property
    def max_hops(self) -> int:
        return max((e.max_hops for e in self.edges.values()), default=0)

    @property
    def flit_hops_per_spike(self) -> float:
        return sum(e.flit_hops_per_spike for e in self.edges.values())

    def transfer_cycles(self, spikes: np.ndarray, per_hop_cycles: int) -> np.ndarray:
        """Transfer cycles (module docstring) for `spikes` output spikes per image, elementwise:
        loads scale with the spikes, so the busiest link is the same for every count."""
        spikes = np.asarray(spikes, np.float64)
        peak = max(self.flits_per_spike_by_link.values(), default=0.0)
        busiest = np.ceil(np.round(spikes * peak, 9))
        out = self.max_hops * per_hop_cycles + busiest - 1
        return np.where((spikes > 0) & (busiest > 0), out, 0).astype(np.int64)


ChannelFlows = dict[str, dict[str, dict[tuple[Coord, Coord], int]]]
"""producer -> consumer -> (home coordinate, destination coordinate) -> output channels of the
producer whose spikes take that flow."""


def channel_flows(mapping: ChipMapping) -> ChannelFlows:
    """Per spike edge (`LayerGraph.spike_edges`), the flows of its producer's output channels:
    from the home tile of each channel (the tile of its column group's first crossbar) to every
    tile holding a consumer crossbar fed by that channel (the fusion unit's slot for a head's
    output), with the number of channels taking each (source = destination: stays in its
    tile)."""
    by_name = {m.name: m for m in mapping.layers}
    coords = mapping.tile_coords
    counts: ChannelFlows = {}
    for src_name, dst_name in mapping.graph.spike_edges():
        src = by_name[src_name]
        src_tiles = src.crossbar_tiles()
        flows = counts.setdefault(src_name, {}).setdefault(dst_name, {})
        for c in range(src.outputs):
            home_tile = src_tiles[c // src.outputs_per_crossbar, 0]
            home = (int(coords[home_tile, 0]), int(coords[home_tile, 1]))
            if dst_name == FUSION_UNIT:
                dsts = [mapping.fusion_unit_coord]
            else:
                dst = by_name[dst_name]
                tiles = np.unique(dst.crossbar_tiles()[:, dst.input_row_groups(c)])
                dsts = [(int(coords[t, 0]), int(coords[t, 1])) for t in tiles]
            for d in dsts:
                flows[(home, d)] = flows.get((home, d), 0) + 1
    return counts


def address_flits(mapping: ChipMapping, producer: str) -> int:
    """Flits of one address event of `producer`: ceil(ceil(log2 neurons) / flit_width_bits)."""
    src = mapping.layer(producer)
    neurons = src.outputs * src.layer.out_hw[0] * src.layer.out_hw[1]
    address_bits = max(1, math.ceil(math.log2(max(neurons, 2))))
    return _ceil_div(address_bits, mapping.arch.noc.flit_width_bits)


def producer_traffic(mapping: ChipMapping) -> dict[str, ProducerTraffic]:
    """Per producer layer with spike edges (`LayerGraph.spike_edges`), per consumer: its flows
    (`channel_flows`) as link loads per output spike (module docstring)."""
    by_name = {m.name: m for m in mapping.layers}
    out: dict[str, ProducerTraffic] = {}
    for name, by_consumer in channel_flows(mapping).items():
        src = by_name[name]
        flits = address_flits(mapping, name)
        edges = {}
        for consumer, flows in by_consumer.items():
            per_spike = [
                NocFlow(s, d, n / max(src.outputs, 1) * flits) for (s, d), n in flows.items()
            ]
            moving = [f for f in per_spike if f.src != f.dst]
            edges[consumer] = EdgeTraffic(
                flits_per_spike_by_link=link_loads(moving),
                max_hops=max((len(xy_links(f.src, f.dst)) for f in moving), default=0),
                flit_hops_per_spike=sum(f.flits * len(xy_links(f.src, f.dst)) for f in moving),
            )
        out[name] = ProducerTraffic(producer=name, flits_per_spike=flits, edges=edges)
    return out


def flit_hops(
    activity: LayerActivity,
    traffic: dict[str, ProducerTraffic],
    edges: Collection[Edge] | None = None,
) -> np.ndarray:
    """(T, L) NoC flit-hops per image: output spikes x flit-hops per spike of each layer of
    `activity` over its spike edges in `edges` (None: all of them; 0 for a layer that sends
    nothing over the NoC)."""
    per_spike = np.zeros(len(activity.layer_names))
    for i, name in enumerate(activity.layer_names):
        if name in traffic:
            per_spike[i] = sum(
                e.flit_hops_per_spike
                for consumer, e in traffic[name].edges.items()
                if edges is None or (name, consumer) in edges
            )
    return np.asarray(activity.output_spikes, np.float64) / activity.images * per_spike
