"""An ablation from SpikeSim's model to the full chip: each effect SpikeSim leaves out added in
turn, with what it does to one image's latency and energy.

Steps (`ABLATION_STEPS`), each on top of the previous, `base` being SpikeSim's architecture
(arch_configs/spikesim.yaml) and `full` the chip with every effect on
(arch_configs/spikesim_chip.yaml):

1. `spikesim`: SpikeSim's accounting: every layer's PE operations of a timestep one layer after
   another and timestep after timestep (no pipelining, no NoC), stage = ceil(ops / PEs) x
   pe_operation_cycles (`hwsim.hw.timing.layer_stage_cycles`); dynamic energy only.
2. `pipelining`: the layer pipeline as the cycle-level simulator runs it (`hwsim.hw.sim`): layers
   overlap across timesteps, spikes cross the NoC, input buffers back-pressure.
3. `line_buffer`: `full`'s `timing.line_buffer`: a layer works row by row and its consumer
   starts a row once the rows its window needs are in, within a timestep too.
4. `partial_sums`: `full`'s `partial_sums` and `energy_pj` (its NoC flit-hop energy), so the
   partial sums of layers spread over PEs travel and are added (`hwsim.hw.psum`).
5. `static_power`: `full`'s `leakage_mw`: the chip leaks for the simulated latency.
6. `offchip`: `full`'s `offchip`: the image comes in before the first layer starts and the
   answer goes out after the last decision.
7. `physical`: the rest of `full` (SAR ADC timing, shared tile buffers, per-cell crossbar costs):
   this step's architecture is `full` itself.

One image is simulated with a given activity (a trace's mean image, or a synthetic one); its
PE operations per job follow each step's energy model as the cycle-level evaluation does
(`spikesim`: every operation). `programming` reports `full`'s one-time weight programming and
the inferences whose energy it equals.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.errors import InputError
from hwsim.hw.activity import LayerActivity, full_activity
from hwsim.hw.arch import Architecture, EnergyModel
from hwsim.hw.energy import PSUM_COMPONENTS, run_energy
from hwsim.hw.mapping import ChipMapping, map_network
from hwsim.hw.programming import ProgrammingCost, programming_cost
from hwsim.hw.sim import Workload, chip_model, simulate
from hwsim.hw.timing import cycles_to_ns, layer_stage_cycles
from hwsim.model.graph import LayerGraph

ABLATION_STEPS: tuple[str, ...] = (
    "spikesim",
    "pipelining",
    "line_buffer",
    "partial_sums",
    "static_power",
    "offchip",
    "physical",
)
"""The ablation's steps in order (module docstring)."""


@dataclass(frozen=True)
class AblationStep:
    """One step: one image's `latency_ns` and energy per inference, pJ, split into `dynamic_pj`
    (PE operations, NoC, fusion unit; `psum_pj` of it for partial sums), `static_pj` and
    `offchip_pj`; `bottleneck` the busiest resource (layer, link or fusion unit)."""

    step: str
    arch: Architecture
    latency_ns: float
    dynamic_pj: float
    psum_pj: float
    static_pj: float
    offchip_pj: float
    bottleneck: str

    @property
    def energy_pj(self) -> float:
        return self.dynamic_pj + self.static_pj + self.offchip_pj


@dataclass(frozen=True)
class Ablation:
    """The steps in `ABLATION_STEPS` order and `full`'s weight programming (None without a
    `programming` section)."""

    steps: tuple[AblationStep, ...]
    programming: ProgrammingCost | None

    def to_frame(self) -> pd.DataFrame:
        """One row per step: step, latency_us, energy_uj, dynamic_uj, psum_uj, static_uj,
        offchip_uj, the latency and energy relative to the previous step, bottleneck."""
        rows = []
        previous: AblationStep | None = None
        for s in self.steps:
            rows.append(
                {
                    "step": s.step,
                    "latency_us": s.latency_ns / 1e3,
                    "energy_uj": s.energy_pj / 1e6,
                    "dynamic_uj": s.dynamic_pj / 1e6,
                    "psum_uj": s.psum_pj / 1e6,
                    "static_uj": s.static_pj / 1e6,
                    "offchip_uj": s.offchip_pj / 1e6,
                    "latency_ratio": s.latency_ns / previous.latency_ns if previous else 1.0,
                    "energy_ratio": s.energy_pj / previous.energy_pj if previous else 1.0,
                    "bottleneck": s.bottleneck,
                }
            )
            previous = s
        return pd.DataFrame(rows)


def step_architectures(base: Architecture, full: Architecture) -> list[Architecture]:
    """The architecture of each step (module docstring): `base` with `full`'s sections added
    one after the other, the last one `full` itself."""
    timing = dataclasses.replace(base.timing, line_buffer=full.timing.line_buffer)
    lines = dataclasses.replace(base, timing=timing)
    psums = dataclasses.replace(lines, partial_sums=full.partial_sums, energy_pj=full.energy_pj)
    static = dataclasses.replace(psums, leakage_mw=full.leakage_mw)
    offchip = dataclasses.replace(static, offchip=full.offchip)
    return [base, base, lines, psums, static, offchip, full]


def _workload(mapping: ChipMapping, activity: LayerActivity) -> Workload:
    """One mean image's jobs: PE operations under the energy model (spikesim: all of them)
    and the spikes each layer sends, rounded to whole counts."""
    steps = activity.timesteps
    if mapping.arch.energy_model is EnergyModel.SPIKESIM:
        ops = np.broadcast_to(mapping.pe_operations(), (steps, len(mapping.layers)))
    else:
        ops = np.rint(np.asarray(activity.active_pe_ops, np.float64) / activity.images)
    sent = np.rint(np.asarray(activity.output_spikes, np.float64) / activity.images)
    return Workload(ops[None].astype(np.int32), sent[None].astype(np.int32))


def _simulated_step(
    name: str, arch: Architecture, graph: LayerGraph, activity: LayerActivity
) -> AblationStep:
    mapping = map_network(arch, graph)
    work = _workload(mapping, activity)
    run = simulate(chip_model(mapping, graph.names, decision_cycles=0), work)
    fusion = run.chip.fusion_node
    # powered from the image's start until each timestep's decision (the last: its answer out)
    powered = run.ns(run.finish[fusion, 0] - run.image_start[0])
    energy = run_energy(mapping, activity, powered_ns=powered)
    psum = [energy.components.index(c) for c in PSUM_COMPONENTS if c in energy.components]
    static = float(np.sum(energy.static_pj))
    return AblationStep(
        step=name,
        arch=arch,
        latency_ns=float(run.ns(run.latency_cycles[0])),
        dynamic_pj=energy.total_pj - static - energy.offchip_pj,
        psum_pj=float(energy.energy_pj[:, :, psum].sum()),
        static_pj=static,
        offchip_pj=energy.offchip_pj,
        bottleneck=run.bottleneck,
    )


def _sequential_step(
    arch: Architecture, graph: LayerGraph, activity: LayerActivity
) -> AblationStep:
    mapping = map_network(arch, graph)
    work = _workload(mapping, activity)
    stages = layer_stage_cycles(mapping, work.pe_ops[0])
    energy = run_energy(mapping, activity)
    busiest = graph.names[int(np.argmax(stages.sum(axis=0)))]
    return AblationStep(
        step="spikesim",
        arch=arch,
        latency_ns=float(cycles_to_ns(stages.sum(), arch.clock_mhz)),
        dynamic_pj=energy.total_pj,
        psum_pj=0.0,
        static_pj=0.0,
        offchip_pj=0.0,
        bottleneck=busiest,
    )


def ablation(
    base: Architecture, full: Architecture, graph: LayerGraph, activity: LayerActivity
) -> Ablation:
    """Latency and energy of one image of `graph` with `activity` (per-layer, summed over its
    `images`: the mean image runs) at each step from `base` to `full` (module docstring)."""
    archs = step_architectures(base, full)
    steps = [_sequential_step(archs[0], graph, activity)]
    for name, arch in zip(ABLATION_STEPS[1:], archs[1:], strict=True):
        steps.append(_simulated_step(name, arch, graph, activity))
    return Ablation(tuple(steps), programming_cost(map_network(full, graph)))


def rate_activity(mapping: ChipMapping, timesteps: int, spike_rate: float) -> LayerActivity:
    """Synthetic activity of one image: every PE operation and crossbar read performed every
    timestep (SpikeSim's accounting), each neuron spiking with probability `spike_rate` per
    timestep (expected counts, so the NoC carries `spike_rate` x `full_activity`'s spikes)."""
    if not 0.0 <= spike_rate <= 1.0:
        raise InputError(f"{{spike_rate}} {spike_rate}: expected 0 to 1", params=("spike_rate",))
    full = full_activity(mapping, timesteps)
    return dataclasses.replace(
        full,
        input_spikes=np.rint(full.input_spikes * spike_rate).astype(np.int64),
        output_spikes=np.rint(full.output_spikes * spike_rate).astype(np.int64),
    )
