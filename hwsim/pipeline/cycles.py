"""The cycle-level simulation of a run: each method's chip simulated over the test images' own
activity (`hwsim.hw.sim`), at its fixed-T operating point (every image runs the timesteps the
method needs to reach the accuracy target) and, where a stop rule is given, with per-image early
termination. Energy of early-terminated runs counts the jobs the simulator actually performed.

Memory: the per-image activity is read in chunks of images (`hwsim.pipeline.activity`), each
simulated run's per-job records are reduced to its energy's sums range by range of images as
the simulator hands them over (`PerformedJobs`), and the run is kept without them
(`ChipRun.summary`; all but `CycleEvaluation.chip_run`); what a run needs is
`hwsim.pipeline.memory.cycle_memory`. The fusion unit's read-out (`fusion_hardware`) is taken a
chunk of images at a time and kept as records (`hwsim.fixed_point.DecisionRecords`): no array
of test images x timesteps (`hwsim.pipeline.memory.fusion_memory`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingType
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from hwsim.engine.result import Activity
from hwsim.engine.threads import default_threads
from hwsim.fixed_point import DecisionRecords, FixedDecisions
from hwsim.fusion import (
    TerminationResult,
    Tuning,
    apply_stop_rule,
    cumulative,
    fused_decisions,
    readout_chunks,
    tune_stop_rule,
)
from hwsim.hw.activity import LayerActivity
from hwsim.hw.arch import Architecture, EnergyModel
from hwsim.hw.area import chip_area
from hwsim.hw.energy import run_energy
from hwsim.hw.fusion_unit import (
    FusionCheck,
    FusionUnit,
    decision_cycles,
    early_exit_decisions,
    float_check,
    fusion_events,
    head_decisions,
)
from hwsim.hw.leakage import leakage_power
from hwsim.hw.mapping import ChipMapping, map_network
from hwsim.hw.offchip import offchip_cost
from hwsim.hw.sim import ChipModel, ChipRun, chip_model, simulate
from hwsim.methods import HEADLINE, METHODS, Decision, Method
from hwsim.metrics import BootstrapConfig
from hwsim.model.graph import FC_HEAD, LayerGraph
from hwsim.pipeline.activity import (
    LAYER_COUNTS,
    image_chunks,
    per_image_counts,
    performed_activity,
    streamed_workload,
)


class TimingModel(StrEnum):
    """How a run's latency is computed."""

    CYCLE = "cycle"  # the discrete-event chip simulation (hwsim.hw.sim), per image
    ANALYTIC = "analytic"  # the max-plus recurrence over mean activity (hwsim.hw.timing)


class OperatingPoint(StrEnum):
    """How long each image runs."""

    FIXED = "fixed-T"  # every image the method's timesteps to the accuracy target
    EARLY = "early-stop"  # the fusion unit stops each image when its decision is confident


def method_heads(method: Method, ic: int) -> tuple[int, ...]:
    """The classifier heads `method` reads, the IC's first (`MethodSpec.head_ids`)."""
    return METHODS[method].head_ids(ic, FC_HEAD)


def method_layers(chip: LayerGraph, method: Method, ic: int) -> set[str]:
    """The layers `method` keeps busy: those on the way to its heads."""
    return {g.name for h in method_heads(method, ic) for g in chip.layers_to_head(h)}


@dataclass(frozen=True, eq=False)
class MethodTiming:
    """One method at one operating point on the simulated chip. Times per image (inference):
    `latency_*_ns` from its first job to its last decision; `steps_mean` timesteps run;
    `energy_pj` per inference (the jobs performed, wasted ones included); `accuracy` of the
    decisions at the stop (None at fixed T: the target's); `noc_share` of the mean latency
    that an ideal (zero-latency) NoC would remove; `analytic_latency_ns` the analytic
    pipeline's (hwsim.hw.timing, mean image, unbounded buffers) for the same steps, fixed T
    only; `target_met_on_tuning` at early stop whether its threshold kept the accuracy target
    on the tuning images (False: the stop is no operating point at the target; None at fixed
    T). `latency_p99_ns` is the inverted-CDF percentile (`hwsim.hw.sim.percentile`). `run` is
    the simulated run without its per-job records (`ChipRun.summary`). `static_pj` and
    `offchip_pj`: the parts of `energy_pj` that are the chip's leakage over the run
    (`hwsim.hw.leakage`) and the off-chip interface's input and result (`hwsim.hw.offchip`),
    per inference; 0.0 when the architecture has no `leakage_mw` or `offchip` section."""

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
    analytic_latency_ns: float | None = None  # the analytic model's, at fixed T (its check)
    target_met_on_tuning: bool | None = None  # early stop: its threshold kept the target
    static_pj: float = 0.0  # leakage over the run, per inference (part of energy_pj)
    offchip_pj: float = 0.0  # off-chip input and result, per inference (part of energy_pj)


def _summary(
    method: Method,
    point: OperatingPoint,
    run: ChipRun,
    ideal_cycles_mean: float,
    energy_pj: float,
    accuracy: float | None,
    target_met: bool | None,
    whole_chip: tuple[float, float],
) -> MethodTiming:
    mean = float(run.latency_cycles.astype(np.float64).mean())
    return MethodTiming(
        method=method,
        point=point,
        steps_mean=float(run.image_steps.mean()),
        cycles_mean=mean,
        latency_mean_ns=float(run.ns(mean)),
        latency_p99_ns=float(run.ns(run.latency_percentile_cycles(99))),
        throughput_per_s=run.throughput_per_s,
        energy_pj=energy_pj,
        accuracy=accuracy,
        noc_share=1.0 - ideal_cycles_mean / mean if mean > 0 else 0.0,
        run=run,
        target_met_on_tuning=target_met,
        static_pj=whole_chip[0],
        offchip_pj=whole_chip[1],
    )


def counted_spikes(head_spikes: MappingType[int, np.ndarray], heads: tuple[int, ...]) -> np.ndarray:
    """(N, T) int32: per image and timestep the spikes the fusion unit's busier counter bank
    counts, the most any of `heads` sent (`hwsim.hw.sim.Workload.counted_spikes`)."""
    first = head_spikes[heads[0]]
    n, steps, classes = first.shape
    out = np.zeros((n, steps), np.int32)
    for part in image_chunks(n, steps, classes):
        for h in heads:
            np.maximum(out[part], head_spikes[h][part].sum(axis=2, dtype=np.int32), out=out[part])
    return out


def whole_chip_pj(mapping: ChipMapping, run: ChipRun) -> tuple[float, float]:
    """(static, off-chip) energy per inference of `run`, pJ: the chip's leakage power
    (`hwsim.hw.leakage`) for the simulated stream's whole duration (`ChipRun.total_cycles`:
    the whole chip is powered throughout) shared by its images, and one image's off-chip input
    and result (`hwsim.hw.offchip`); each 0.0 when the architecture does not model it."""
    static = float(leakage_power(mapping).energy_pj(run.ns(run.total_cycles))) / run.images
    return static, float(offchip_cost(mapping.arch, mapping.graph).energy_pj)


class PerformedJobs:
    """Running sums, over a simulated run's images as their per-job records come
    (`hwsim.hw.sim.simulate`'s `on_records`), of what `energy_pj` charges for `method` on
    `chip`: the activity of the jobs performed (`performed_activity`, int64 per timestep and
    layer), per timestep and layer the images whose job ran, and the spikes the fusion unit
    counted for its deciding images. Integer sums, so the ranges' sizes change nothing."""

    def __init__(
        self,
        mapping: ChipMapping,
        activity: Activity,
        head_spikes: MappingType[int, np.ndarray],
        chip: ChipModel,
        method: Method,
        ic: int,
    ) -> None:
        self.mapping, self.activity, self.head_spikes = mapping, activity, head_spikes
        self.chip, self.method, self.ic = chip, method, ic
        steps = per_image_counts(activity).shape[1]
        self.performed = {
            f: np.zeros((steps, len(mapping.graph.names)), np.int64) for f in LAYER_COUNTS
        }
        self.ran = np.zeros((steps, len(chip.layer_names)), np.int64)
        self.counted = {h: np.zeros(steps, np.int64) for h in method_heads(method, ic)}
        self.deciding = np.zeros(steps, np.int64)

    def add(self, images: slice, start: np.ndarray, finish: np.ndarray) -> None:
        """The records of `images` (consecutive, in order): `start` (nodes, n, T) cycles, -1
        where a job was not performed (`finish` is not read)."""
        graph, names = self.mapping.graph, self.chip.layer_names

        def done(part: slice) -> dict[str, np.ndarray]:
            rows = slice(part.start - images.start, part.stop - images.start)
            return {name: start[v, rows] >= 0 for v, name in enumerate(names)}

        performed = performed_activity(graph, self.activity, done, images)
        for f, total in self.performed.items():
            total += getattr(performed, f)
        self.ran += (start[: len(names)] >= 0).sum(axis=1, dtype=np.int64).T
        deciding = start[self.chip.fusion_node] >= 0  # (n, T)
        self.deciding += deciding.sum(axis=0, dtype=np.int64)
        steps = start.shape[2]
        n = images.stop - images.start
        for part in image_chunks(n, steps, graph.classes):
            rows = slice(images.start + part.start, images.start + part.stop)
            for h, total in self.counted.items():
                spikes = self.head_spikes[h][rows, :steps].sum(axis=2, dtype=np.int64)
                total += (spikes * deciding[part]).sum(0)

    def energy_pj(self, run: ChipRun, stops: bool = False) -> float:
        """Energy per inference of the jobs `run` performed (every image's records added)
        for the method (the layers of run.chip; the fusion unit when it uses it, counting the
        spikes of its heads, with the stop test when `stops`): the energy model applied to the
        activity of those jobs alone. The event model's NoC energy is the simulated packets'
        flit-hops (link_flits) x noc_flit_hop, so the packet format, head flits and the
        rounding of each packet to whole flits are charged as simulated. The static and
        off-chip energy (`whole_chip_pj`) are added; both 0 when the architecture does not
        model them."""
        mapping, graph, names = self.mapping, self.mapping.graph, self.chip.layer_names
        n = run.images
        share = np.zeros(self.ran.shape[:1] + (len(graph.names),))
        for v, name in enumerate(names):
            share[:, graph.names.index(name)] = self.ran[:, v] / n
        fusion = None
        unit = mapping.arch.fusion_unit
        if unit is not None and METHODS[self.method].uses_fusion_unit(stops):
            none = np.zeros_like(self.deciding)
            fusion = fusion_events(
                unit,
                graph.classes,
                self.counted.get(self.ic, none),
                self.counted.get(FC_HEAD, none),
                n,
                self.deciding,
                stops,
                unit_heads(self.method),
            )
        performed = LayerActivity(layer_names=graph.names, images=n, **self.performed)
        energy = run_energy(mapping, performed, fusion=fusion)
        layers = np.array([g in names for g in graph.names])
        pe = [c for c, name in enumerate(energy.components) if name != "noc"]
        fusion_pj = energy.fusion_pj.sum() if fusion is not None else 0.0
        whole_chip = sum(whole_chip_pj(mapping, run))
        if mapping.arch.energy_model is EnergyModel.SPIKESIM:
            # every operation of a performed job is charged: weight each (t, layer) by the
            # share of images whose job ran
            charged = energy.energy_pj[:, :, pe].sum(axis=2) * share
            return float(charged.sum() + fusion_pj + whole_chip)
        charged = energy.energy_pj[:, layers][:, :, pe].sum()
        noc = run.link_flits.sum() * mapping.arch.energy_pj.noc_flit_hop / n
        return float(charged + noc + fusion_pj + whole_chip)


@dataclass(frozen=True)
class EarlyStop:
    """A method's early termination on the test images: `stop_step` (N,) timestep index
    (0-based) where the fusion unit stops each image, the `accuracy` of its answers there, the
    unit's `decision_cycles` per image and timestep with the stop test, and whether its
    threshold kept the accuracy target on the tuning images (`StopRule.target_met`; False:
    the stop is no operating point at the target and `evaluate_cycles` simulates none)."""

    stop_step: np.ndarray
    accuracy: float
    decision_cycles: int
    target_met: bool = True


@dataclass(frozen=True, eq=False)
class CycleEvaluation:
    """The cycle-level results of a run: `methods` rows (fixed T, then early stop where
    simulated), the whole chip's run at the fused method's fixed T (`chip_run`, for the
    latency breakdown and link utilisation, with its per-job records) and its mapping."""

    methods: tuple[MethodTiming, ...]
    chip_run: ChipRun
    mapping: ChipMapping
    fusion: FusionHardware | None = None
    fusion_share: dict[str, float] | None = None  # energy, area, cycles (fusion_unit_share)


@dataclass(frozen=True)
class _Run:
    """One simulated run of `evaluate_cycles`: a method at an operating point, the fusion
    unit's `cycles` per decision, `steps` per image (fixed T) or `stop` steps (early stop, with
    its test `accuracy` and whether it met the target on the tuning images)."""

    method: Method
    point: OperatingPoint
    cycles: int
    steps: int | None
    stop: np.ndarray | None = None
    accuracy: float | None = None
    target_met: bool | None = None


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
    early_stop: MappingType[Method, EarlyStop] | None = None,
    on_run: Callable[[int, int], None] | None = None,
    threads: int = 0,
) -> CycleEvaluation:
    """Simulate each method of `steps_to_target` on the chip of `graph`'s backbone + IC `ic` +
    FC: at fixed T, and with early termination where `early_stop[m]` is given and its
    threshold kept the target on the tuning images (`EarlyStop.target_met`; a threshold that
    missed it gives no early-stop operating point, so none is simulated).
    `decision_cycles[m]`: the fusion unit's cycles per image and timestep for m.
    `on_run(done, total)` after each simulated run; `threads` runs at once (0: the CPUs
    available)."""
    chip = graph.with_heads({ic, FC_HEAD})
    mapping = map_network(arch, chip)
    timesteps = per_image_counts(activity).shape[1]
    todo = fixed_steps(steps_to_target, timesteps)
    threads = threads or default_threads()
    runs = []
    for method, steps in todo.items():
        runs.append(_Run(method, OperatingPoint.FIXED, decision_cycles[method], steps))
        e = (early_stop or {}).get(method)
        if e is not None and e.target_met:  # a threshold that missed the target: no stop
            runs.append(
                _Run(
                    method,
                    OperatingPoint.EARLY,
                    e.decision_cycles,
                    steps=None,
                    stop=e.stop_step,
                    accuracy=e.accuracy,
                    target_met=e.target_met,
                )
            )
    # the run `chip_run` reports (latency breakdown, link loads): the fused method's at fixed
    # T on the whole chip; like every run, a summary without per-job records
    whole = [k for k, r in enumerate(runs) if method_layers(chip, r.method, ic) >= set(chip.names)]
    fused = [
        k for k in whole if (runs[k].method, runs[k].point) == (HEADLINE, OperatingPoint.FIXED)
    ]
    kept = (fused or whole or [0])[0]

    def one(k: int) -> tuple[MethodTiming, ChipRun | None]:
        # one simulated run at a time per thread: its workload, then its per-job records
        # reduced to energy as they come and dropped, before the ideal-NoC run
        r = runs[k]
        active = method_layers(chip, r.method, ic)
        counted = counted_spikes(head_spikes, method_heads(r.method, ic))
        work = streamed_workload(mapping, activity, active, counted)
        model = chip_model(mapping, active, r.cycles)
        jobs = PerformedJobs(mapping, activity, head_spikes, model, r.method, ic)
        run = simulate(model, work, r.steps, r.stop, on_records=jobs.add, keep=False)
        energy = jobs.energy_pj(run, stops=r.point is OperatingPoint.EARLY)
        full = run if k == kept else None
        ideal = chip_model(mapping, active, r.cycles, ideal_noc=True)
        ideal_mean = float(simulate(ideal, work, r.steps, r.stop, keep=False).latency_cycles.mean())
        row = _summary(
            r.method,
            r.point,
            run,
            ideal_mean,
            energy,
            r.accuracy,
            r.target_met,
            whole_chip_pj(mapping, run),
        )
        return row, full

    rows: list[MethodTiming] = []
    chip_run = None
    with ThreadPoolExecutor(max(1, threads)) as pool:  # the simulator releases the GIL
        for done, (row, full) in enumerate(pool.map(one, range(len(runs)))):
            rows.append(row)
            chip_run = full if full is not None else chip_run
            if on_run is not None:
                on_run(done + 1, len(runs))
    assert chip_run is not None
    return CycleEvaluation(tuple(rows), chip_run, mapping)


def method_decisions(
    arch: Architecture, method: Method, tuning: Tuning, fc: np.ndarray, ic: np.ndarray
) -> DecisionRecords:
    """The fusion unit's fixed-point decisions and confidences (its configured termination
    rule) for `method` on the FC's and the IC's spikes (N, T, C), by the method's `Decision`: a
    fused one through its alpha LUT, one head's argmax from that head's counters, the
    early-exit switch with its tuned thresholds; reduced to their records
    (`FixedDecisions.records`). Counted and read out a chunk of images at a time
    (`readout_chunks`; every read-out is per image, so the chunks change no decision)."""
    return DecisionRecords.concatenate(
        [
            _decisions(arch, method, tuning, cumulative(fc[part]), cumulative(ic[part])).records()
            for part in readout_chunks(fc)
        ]
    )


def tested_decisions(
    arch: Architecture,
    method: Method,
    tuning: Tuning,
    fc: np.ndarray,
    ic: np.ndarray,
    labels: np.ndarray,
    threshold: int | None,
) -> tuple[DecisionRecords, FusionCheck | None]:
    """`method_decisions` on test images pruned to the records that stop them at `threshold`
    (`DecisionRecords.first_reaching`: O(N), whatever T), and for a fused method its unit
    checked against the float fusion's decisions with the LUT's alpha
    (`hwsim.fusion.fused_decisions`, `float_check`), both a chunk of images at a time."""
    parts = [
        _tested_chunk(arch, method, tuning, fc[part], ic[part], labels[part], threshold)
        for part in readout_chunks(fc)
    ]
    checks = [c for _, c in parts if c is not None]
    records = DecisionRecords.concatenate([r for r, _ in parts])
    return records, FusionCheck.combine(checks) if checks else None


def _tested_chunk(
    arch: Architecture,
    method: Method,
    tuning: Tuning,
    fc: np.ndarray,
    ic: np.ndarray,
    labels: np.ndarray,
    threshold: int | None,
) -> tuple[DecisionRecords, FusionCheck | None]:
    """`tested_decisions` on one chunk of images (its (chunk, T) arrays freed on return)."""
    fc_cum, ic_cum = cumulative(fc), cumulative(ic)
    fixed = _decisions(arch, method, tuning, fc_cum, ic_cum)
    records = fixed.records().first_reaching(threshold)
    if not METHODS[method].fused:
        return records, None
    lut = tuning.luts[method]
    reference = fused_decisions(fc_cum, ic_cum, lut.decoded_alpha(fc.shape[1]))
    return records, float_check(FusionUnit(arch.fusion_unit, lut), fixed, labels, reference)


def _decisions(
    arch: Architecture, method: Method, tuning: Tuning, fc_cum: np.ndarray, ic_cum: np.ndarray
) -> FixedDecisions:
    """`method_decisions` on one chunk of images."""
    unit = arch.fusion_unit
    assert unit is not None
    rule = unit.termination
    decision = METHODS[method].decision
    if METHODS[method].fused:
        return FusionUnit(unit, tuning.luts[method]).decide(fc_cum, ic_cum)
    if decision is Decision.EARLY_EXIT:
        thresholds = tuning.early_exit.threshold
        return early_exit_decisions(
            fc_cum, ic_cum, thresholds, rule, unit.score_frac_bits, unit.counter_bits
        )
    counts = fc_cum if decision is Decision.FC_ARGMAX else ic_cum
    return head_decisions(counts, rule, unit.score_frac_bits, unit.counter_bits)


def unit_heads(method: Method) -> int:
    """`decision_events`'s `heads`: 0 for a fused method, else the heads it reads."""
    spec = METHODS[method]
    return 0 if spec.fused else len(spec.head_ids(0, FC_HEAD))


def method_decision_cycles(arch: Architecture, method: Method, classes: int, stop: bool) -> int:
    """The fusion unit's cycles per image and timestep for `method`
    (`FusionUnit.decision_cycles`; the methods that do not fuse read no alpha LUT, and use the
    unit only with `stop`, the early-termination test). 0 without a fusion unit."""
    unit = arch.fusion_unit
    spec = METHODS[method]
    if unit is None or not spec.uses_fusion_unit(stop):
        return 0
    cycles = decision_cycles(unit, classes, terminate=stop)
    return cycles.total - (0 if spec.fused else cycles.lut)


@dataclass(frozen=True, eq=False)
class FusionHardware:
    """The fusion unit in fixed point on the test images: per fused method its decisions
    checked against the float fusion (`checks`), and per method early termination tuned on
    the tuning images (`terminations`)."""

    checks: dict[Method, FusionCheck]
    terminations: dict[Method, TerminationResult]


def fusion_hardware(
    arch: Architecture,
    tuning: Tuning,
    ic: int,
    tune_spikes: MappingType[int, np.ndarray],
    tune_labels: np.ndarray,
    test_spikes: MappingType[int, np.ndarray],
    test_labels: np.ndarray,
    target: float,
    bootstrap: BootstrapConfig | None = None,
    tune_ids: np.ndarray | None = None,
    test_ids: np.ndarray | None = None,
) -> FusionHardware:
    """Fixed-point checks and early termination of every method (`METHODS`) for IC `ic`:
    thresholds tuned to keep `target` accuracy on the tuning images, applied to the test
    images, a tie at T credited by the tuning's rule (`Tuning.ties`; `tune_ids`, `test_ids`:
    the images' ids in their data set, `Trace.image_indices`, which the random rule's draws
    follow); the test images are read out after the threshold is tuned, each kept as the one
    record that stops it (`tested_decisions`). Each fused method's unit is checked against the
    float fusion's decisions, ties decided exactly (`hwsim.fusion.fused_decisions`, the
    posterior mean the unit computes, with the LUT's alpha)."""
    tune_fc, tune_ic = (tune_spikes[h] for h in (FC_HEAD, ic))
    test_fc, test_ic = (test_spikes[h] for h in (FC_HEAD, ic))
    labels = np.asarray(test_labels)
    checks: dict[Method, FusionCheck] = {}
    stops: dict[Method, TerminationResult] = {}
    for method in METHODS:
        tuned = method_decisions(arch, method, tuning, tune_fc, tune_ic)
        rule = tune_stop_rule(tuned, tune_labels, target, tuning.ties, tune_ids)
        del tuned  # the tuning images' records, before the test images are read out
        tested, check = tested_decisions(
            arch, method, tuning, test_fc, test_ic, labels, rule.threshold
        )
        stops[method] = apply_stop_rule(
            method,
            rule,
            tested,
            labels,
            image_ids=test_ids,
            bootstrap=0 if bootstrap is None else bootstrap.resamples,
            level=0.9 if bootstrap is None else bootstrap.level,
            seed=0 if bootstrap is None else bootstrap.seed,
        )
        if check is not None:
            checks[method] = check
    return FusionHardware(checks, stops)


def fusion_unit_share(cycles: CycleEvaluation, energy_pj: float, total_pj: float) -> dict:
    """The fusion unit's share of the chip: `energy` (its pJ / the whole run's, as given),
    `area` (its um^2 / the chip's), `cycles` (its busy cycles / the fused method's run) and
    `decision_vs_bottleneck` (its cycles per decision / the bottleneck layer's mean cycles
    per job)."""
    run = cycles.chip_run
    area = chip_area(cycles.mapping)
    fu = run.chip.fusion_node
    jobs = run.jobs
    busiest = int(np.argmax(run.busy_cycles[:fu]))
    per_job = run.busy_cycles[busiest] / max(int(jobs[busiest]), 1)
    return {
        "energy": energy_pj / total_pj if total_pj else 0.0,
        "area": area.chip_um2.get("fusion_unit", 0.0) / area.total_um2,
        "cycles": float(run.busy_cycles[fu]) / max(run.total_cycles, 1),
        "decision_vs_bottleneck": run.chip.decision_cycles / per_job if per_job else 0.0,
    }
