"""Walks over a NIR graph: topological order, the recurrent edge that closes a cycle, the Outputs
each IF population feeds, and the backbone's block numbers. Iterative, so a long chain needs
no recursion (`hwsim.model.nir_io` imports with these)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.model.nir_nodes import NirError

if TYPE_CHECKING:
    from hwsim.model.nir_io import _Draft


@dataclass(frozen=True)
class GraphPath:
    """The synaptic nodes between a source (an IF node, or None: the network input) and an
    IF node, in forward order."""

    source: str | None
    nodes: tuple[str, ...]
    target: str


def topological_order(nodes: dict[str, Any], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Node names in a topological order (ties in the graph's node order); a cycle is refused
    naming one of its edges."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    indeg = dict.fromkeys(nodes, 0)
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = deque(n for n in nodes if indeg[n] == 0)
    order: list[str] = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) == len(nodes):
        return order
    edge = cycle_edge(nodes, edges, set(order))
    raise NirError(
        f"recurrent edge {edge[0]!r} -> {edge[1]!r} (a cycle); hwsim simulates feed-forward"
        " networks only"
    )


def cycle_edge(
    nodes: dict[str, Any], edges: Sequence[tuple[str, str]], ordered: set[str]
) -> tuple[str, str]:
    """An edge of a cycle among the nodes a topological sort left (`ordered`: the ones it
    placed): the edge into the cycle's node that comes first in the graph's node order.

    Every node left has a predecessor that is left too (else the sort would have placed it),
    so walking back from one along such predecessors repeats a node within len(nodes) steps;
    the walk from the repeat to itself is a cycle. Iterative: no recursion limit."""
    pred: dict[str, str] = {}
    for a, b in edges:
        if a not in ordered and b not in ordered:
            pred.setdefault(b, a)
    walk: list[str] = []
    seen: dict[str, int] = {}
    node = next(n for n in nodes if n not in ordered)
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = pred[node]
    cycle = walk[seen[node] :]  # each node's predecessor is the next one, the last's the first
    rank = {n: i for i, n in enumerate(nodes)}
    first = min(range(len(cycle)), key=lambda i: rank[cycle[i]])
    return cycle[(first + 1) % len(cycle)], cycle[first]


def outputs_reached(
    outputs: list[str], out_pop: dict[str, str], into: dict[str, list[_Draft]]
) -> dict[str, set[str]]:
    """The Outputs every IF population feeds (directly or through later populations): a
    backward walk from each Output's population, O(outputs x layers), no recursion."""
    reached: dict[str, set[str]] = {n: set() for n in into}
    for o in outputs:
        stack = [out_pop[o]]
        while stack:
            pop = stack.pop()
            if o in reached[pop]:
                continue
            reached[pop].add(o)
            stack += [d.source for d in into[pop] if d.source is not None]
    return reached


def backbone_blocks(backbone: list[str], into: dict[str, list[_Draft]]) -> dict[str, int]:
    """Backbone block of every backbone population: a block ends at a population no layer
    jumps over (every later population's input passes through it), as a residual block's
    join does; a plain conv block is one population. This is the zoo's block numbering."""
    pos = {n: i for i, n in enumerate(backbone)}
    jumps = np.zeros(len(backbone) + 1, np.int64)  # +1 where a layer starts jumping, -1 ends
    for n in backbone:
        for d in into[n]:
            a, b = -1 if d.source is None else pos.get(d.source, -1), pos[n]
            if b - a > 1:  # the layer jumps over the populations a+1 .. b-1
                jumps[a + 1] += 1
                jumps[b] -= 1
    jumped = np.cumsum(jumps)[:-1] > 0
    block, current, pending = {}, 0, []
    for i, n in enumerate(backbone):
        pending.append(n)
        if not jumped[i]:
            for p in pending:
                block[p] = current
            current, pending = current + 1, []
    for p in pending:
        block[p] = current
    return block
