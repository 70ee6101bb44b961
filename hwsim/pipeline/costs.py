"""What each method costs on the chip: energy and latency per timestep, from the test trace.

The chip holds the backbone, the IC head and the FC head (`LayerGraph.with_heads`); a method
pays for the layers its heads need (`MethodSpec.heads`, `LayerGraph.layers_to_head`), the NoC
traffic among them and the fusion unit if it uses one, and waits for its heads' outputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.engine.trace import Trace, TraceError
from hwsim.hw.activity import LayerActivity, full_activity
from hwsim.hw.arch import Architecture, EnergyModel
from hwsim.hw.energy import run_energy
from hwsim.hw.fusion_unit import fusion_events
from hwsim.hw.mapping import ChipMapping, map_network
from hwsim.hw.noc import producer_traffic
from hwsim.hw.timing import latency_ns, run_timing
from hwsim.methods import METHODS, Method
from hwsim.model.graph import FC_HEAD, LayerGraph
from hwsim.pipeline.activity import activity_spec, layer_activity
from hwsim.results import ChipCosts


def chip_activity(mapping: ChipMapping, test: Trace) -> LayerActivity:
    """The activity the mapped chip's `energy_model` charges: every PE operation every step
    (spikesim), or what the test trace's spikes caused (event)."""
    arch, chip = mapping.arch, mapping.graph
    steps, images = test.key.timesteps, test.key.images
    if arch.energy_model is EnergyModel.SPIKESIM:
        return full_activity(mapping, steps, images)
    act = test.sim.activity
    wanted = activity_spec(arch)
    if act is None or dataclasses.replace(act.spec, per_image=False) != wanted:
        raise TraceError(
            "the test trace has no crossbar activity for this architecture; the event energy"
            " model needs a trace simulated with it (hwsim run does this by itself)"
        )
    return layer_activity(chip, act, images)


def chip_costs(arch: Architecture, graph: LayerGraph, ic: int, test: Trace) -> ChipCosts:
    """Per method (`hwsim.methods.METHODS`), energy and latency on the chip of `graph`'s
    backbone + IC `ic` + FC, under arch.energy_model, from the test trace.

    A method pays for the layers its heads need (`MethodSpec.head_ids`, up to each head by
    `LayerGraph.layers_to_head`), the NoC traffic among them (`RunEnergy.method_pj`: no spikes
    sent to a head it does not read) and the fusion unit if it uses one at every timestep (its
    counters, alpha LUT, posterior multiplies and compares, when the arch has a fusion unit).
    """
    chip = graph.with_heads({ic, FC_HEAD})
    fusion = None
    if arch.fusion_unit is not None:
        fusion = fusion_events(  # every image decided every step: no stop test
            arch.fusion_unit,
            chip.classes,
            test.sim.head_spikes[ic].sum(axis=(0, 2)),
            test.sim.head_spikes[FC_HEAD].sum(axis=(0, 2)),
            test.key.images,
            terminate=False,
        )
    mapping = map_network(arch, chip)
    activity = chip_activity(mapping, test)
    traffic = producer_traffic(mapping)
    energy = run_energy(mapping, activity, traffic=traffic, fusion=fusion)
    timing = run_timing(mapping, activity, traffic=traffic)
    energies: dict[Method, np.ndarray] = {}
    latency: dict[Method, np.ndarray] = {}
    for method, spec in METHODS.items():
        heads = spec.head_ids(ic, FC_HEAD)
        paid = {g.name for h in heads for g in chip.layers_to_head(h)}
        energies[method] = np.cumsum(energy.method_pj(paid, spec.fusion_unit))
        latency[method] = latency_ns(timing, {chip.head_output(h).name for h in heads})
    return ChipCosts(energies, latency, energy, timing)
