"""The cycle-level simulation of a run: each method's chip simulated over the test images' own
activity (`hwsim.hw.sim`), at its fixed-T operating point (every image runs the timesteps the
method needs to reach the accuracy target) and, where a stop rule is given, with per-image early
termination. Energy of early-terminated runs counts the jobs the simulator actually performed.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hwsim.engine.core import Activity
from hwsim.graph import FC_HEAD, LayerGraph
from hwsim.hw.activity import LayerActivity, fusion_activity
from hwsim.hw.arch import Architecture, EnergyModel
from hwsim.hw.energy import run_energy
from hwsim.hw.mapping import Mapping, map_network
from hwsim.hw.noc import producer_traffic
from hwsim.hw.sim import ChipRun, Workload, chip_model, simulate
from hwsim.methods import METHODS, Heads, Method


class TimingModel(StrEnum):
    """How a run's latency is computed."""

    CYCLE = "cycle"  # the discrete-event chip simulation (hwsim.hw.sim), per image
    ANALYTIC = "analytic"  # the max-plus recurrence over mean activity (hwsim.hw.timing)


class OperatingPoint(StrEnum):
    """How long each image runs."""

    FIXED = "fixed-T"  # every image the method's timesteps to the accuracy target
    EARLY = "early-stop"  # the fusion unit stops each image when its decision is confident


def method_heads(method: Method, ic: int) -> tuple[int, ...]:
    """The classifier heads `method` reads (METHODS)."""
    return {Heads.FC: (FC_HEAD,), Heads.IC: (ic,), Heads.BOTH: (ic, FC_HEAD)}[METHODS[method].heads]


def method_layers(chip: LayerGraph, method: Method, ic: int) -> set[str]:
    """The layers `method` keeps busy: those on the way to its heads."""
    return {g.name for h in method_heads(method, ic) for g in chip.layers_to_head(h)}


def chip_workload(mapping: Mapping, activity: Activity) -> Workload:
    """Per image, timestep and layer of `mapping`'s graph: the PE operations the energy model
    charges (spikesim: every operation; event: those with a spiking input in their window) and
    the spikes each layer sends (fired at t - 1; none for a residual skip conv), from the
    engine's per-image activity."""
    if activity.per_image is None:
        raise ValueError("the cycle-level simulation needs a trace with per-image activity")
    graph = mapping.graph
    cols = [activity.names.index(n) for n in graph.names]
    per_image = activity.per_image[:, :, cols]
    n, steps = per_image.shape[:2]
    if mapping.arch.energy_model is EnergyModel.SPIKESIM:
        ops = np.broadcast_to(mapping.pe_operations().astype(np.int32), (n, steps, len(cols)))
    else:
        ops = per_image[..., 2]
    sent = np.zeros((n, steps, len(cols)), np.int32)
    sent[:, 1:] = per_image[:, :-1, :, 3]
    sent[:, :, [not g.sends_spikes for g in graph.layers]] = 0
    return Workload(np.ascontiguousarray(ops), sent)


@dataclass(frozen=True, eq=False)
class MethodTiming:
    """One method at one operating point on the simulated chip. Times per image (inference):
    `latency_*_ns` from its first job to its last decision; `steps_mean` timesteps run;
    `energy_pj` per inference (the jobs performed, wasted ones included); `accuracy` of the
    decisions at the stop (None at fixed T: the target's); `noc_share` of the mean latency
    that an ideal (zero-latency) NoC would remove."""

    method: Method
    point: OperatingPoint
    steps_mean: float
    cycles_mean: float
    latency_mean_ns: float
    latency_p99_ns: float
    throughput_per_s: float
    energy_pj: float
    accuracy: float | None
    noc_share: float
    run: ChipRun


def _summary(
    method: Method,
    point: OperatingPoint,
    run: ChipRun,
    ideal: ChipRun,
    energy_pj: float,
    accuracy: float | None,
) -> MethodTiming:
    lat = run.latency_cycles.astype(np.float64)
    mean = float(lat.mean())
    ideal_mean = float(ideal.latency_cycles.mean())
    return MethodTiming(
        method=method,
        point=point,
        steps_mean=float(run.image_steps.mean()),
        cycles_mean=mean,
        latency_mean_ns=float(run.ns(mean)),
        latency_p99_ns=float(run.ns(np.percentile(lat, 99))),
        throughput_per_s=run.throughput_per_s,
        energy_pj=energy_pj,
        accuracy=accuracy,
        noc_share=1.0 - ideal_mean / mean if mean > 0 else 0.0,
        run=run,
    )


def performed_energy_pj(
    mapping: Mapping,
    activity: Activity,
    run: ChipRun,
    head_spikes: MappingType[int, np.ndarray],
    ic: int,
    fusion_unit: bool,
) -> float:
    """Energy per inference of the jobs `run` performed (layers of run.chip, its fusion unit
    counting heads `ic` and FC_HEAD when `fusion_unit`): the energy model applied to the
    activity of those jobs alone."""
    graph = mapping.graph
    n = run.start.shape[1]
    steps = run.start.shape[2]
    names = run.chip.layer_names
    done = np.zeros((n, steps, len(graph.names)), bool)
    for v, name in enumerate(names):
        done[:, :, graph.names.index(name)] = run.performed[v]
    cols = [activity.names.index(g) for g in graph.names]
    assert activity.per_image is not None
    per_image = activity.per_image[:, :steps, cols].astype(np.int64) * done[..., None]
    sent = np.zeros((steps, len(cols)), np.int64)
    sent[1:] = per_image[:, :-1, :, 3].sum(0)
    sent[:, [not g.sends_spikes for g in graph.layers]] = 0
    counts = per_image.sum(0)
    masked = LayerActivity(
        layer_names=graph.names,
        images=n,
        active_pe_ops=counts[..., 2],
        crossbar_reads=counts[..., 1],
        input_spikes=counts[..., 0],
        output_spikes=sent,
    )
    fusion = None
    deciding = run.performed[run.chip.fusion_node]  # (N, T)
    if fusion_unit and mapping.arch.fusion_unit is not None:
        ic_spikes, fc_spikes = (
            (head_spikes[h][:, :steps].sum(axis=2) * deciding).sum(0) for h in (ic, FC_HEAD)
        )
        fusion = fusion_activity(graph.classes, ic_spikes, fc_spikes, n, deciding=deciding.sum(0))
    energy = run_energy(mapping, masked, fusion=fusion)
    if mapping.arch.energy_model is EnergyModel.SPIKESIM:
        # every operation of a performed job is charged: weight each (t, layer) by the share of
        # images whose job ran
        share = done.mean(axis=0)
        layers = np.array([g in names for g in graph.names])
        pe = energy.energy_pj.sum(axis=2) * share * layers
        return float(pe.sum() + (energy.fusion_pj.sum() if fusion is not None else 0.0))
    return float(energy.method_pj(set(names), fusion is not None).sum())


@dataclass(frozen=True, eq=False)
class CycleEvaluation:
    """The cycle-level results of a run: `methods` rows (fixed T, then early stop where
    simulated), the whole chip's run at the fused method's fixed T (`chip_run`, for the
    latency breakdown and link utilisation) and its mapping."""

    methods: tuple[MethodTiming, ...]
    chip_run: ChipRun
    mapping: Mapping


def fixed_steps(steps_to_target: MappingType[Method, int | None], timesteps: int) -> dict:
    """Timesteps per method at its fixed-T operating point: its steps to the target, else
    all `timesteps`."""
    return {m: (s if s is not None else timesteps) for m, s in steps_to_target.items()}


def evaluate_cycles(
    arch: Architecture,
    graph: LayerGraph,
    ic: int,
    activity: Activity,
    head_spikes: MappingType[int, np.ndarray],
    steps_to_target: MappingType[Method, int | None],
    decision_cycles: MappingType[Method, int],
    early_stop: MappingType[Method, tuple[np.ndarray, float]] | None = None,
    on_run: Callable[[int, int], None] | None = None,
) -> CycleEvaluation:
    """Simulate each method of `steps_to_target` on the chip of `graph`'s backbone + IC `ic` +
    FC: at fixed T, and with early termination where `early_stop[m]` = (stop step index per
    image (N,), accuracy of the decisions at the stop) is given. `decision_cycles[m]`: the
    fusion unit's cycles per image and timestep for m. `on_run(done, total)` after each
    method's simulations."""
    chip = graph.with_heads({ic, FC_HEAD})
    mapping = map_network(arch, chip)
    work = chip_workload(mapping, activity)
    producer_traffic(mapping)  # fail early on an unroutable mesh
    timesteps = work.timesteps
    rows: list[MethodTiming] = []
    chip_run: ChipRun | None = None
    todo = fixed_steps(steps_to_target, timesteps)
    for done, (method, steps) in enumerate(todo.items()):
        if on_run is not None:
            on_run(done, len(todo))
        active = method_layers(chip, method, ic)
        cols = [i for i, n in enumerate(chip.names) if n in active]
        sub = Workload(work.pe_ops[:, :, cols], work.sent_spikes[:, :, cols])
        model = chip_model(mapping, active, decision_cycles[method])
        ideal = chip_model(mapping, active, decision_cycles[method], ideal_noc=True)
        uses_fusion = METHODS[method].fusion_unit
        run = simulate(model, sub, image_steps=steps)
        energy = performed_energy_pj(mapping, activity, run, head_spikes, ic, uses_fusion)
        rows.append(
            _summary(method, OperatingPoint.FIXED, run, simulate(ideal, sub, steps), energy, None)
        )
        if chip_run is None or len(active) == len(chip.names) and method is Method.BSF_GRID:
            chip_run = run
        if early_stop and method in early_stop:
            stop, accuracy = early_stop[method]
            run = simulate(model, sub, stop_step=stop)
            energy = performed_energy_pj(mapping, activity, run, head_spikes, ic, uses_fusion)
            rows.append(
                _summary(
                    method,
                    OperatingPoint.EARLY,
                    run,
                    simulate(ideal, sub, stop_step=stop),
                    energy,
                    accuracy,
                )
            )
    if on_run is not None:
        on_run(len(todo), len(todo))
    assert chip_run is not None
    return CycleEvaluation(tuple(rows), chip_run, mapping)
