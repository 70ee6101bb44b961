"""The entry points about a chip: `estimate` (SpikeSim's energy per timestep), `map` (crossbars,
PEs, tiles and area), `profile` (a network's energy, latency, area and spike rates in one
call), `functional` (the hardware-functional co-design sweep), `calibrate` (a cost table fitted
to measurements) and `ablation` (SpikeSim's model to the full chip, one effect at a time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwsim.atomic import (
    check_output_file,
)
from hwsim.errors import InputError
from hwsim.hw.ablation import ablation as run_ablation
from hwsim.hw.ablation import rate_activity
from hwsim.hw.arch import Architecture, load_arch
from hwsim.hw.area import chip_area
from hwsim.hw.calibrate import CalibrationResult, FreeEntry
from hwsim.hw.calibrate import calibrate as fit_cost_table
from hwsim.hw.energy import spikesim_energy
from hwsim.hw.mapping import map_network
from hwsim.methods import Ties
from hwsim.model.coding import InputCoding
from hwsim.model.conversion import ConversionParams
from hwsim.model.netspec import NetSpec
from hwsim.model.nir_io import ImportedSpec, NirOptions
from hwsim.pipeline.codesign import codesign_sweep
from hwsim.pipeline.config import (
    CodesignConfig,
    ICChoice,
    ProgressFn,
    WarnFn,
)
from hwsim.pipeline.outputs import (
    is_calibrated_yaml,
)
from hwsim.pipeline.profile import Images, profile_model
from hwsim.pipeline.session import network_spec
from hwsim.report.profile import ProfileReport
from hwsim.results import (
    AblationResult,
    EstimateResult,
    FunctionalResult,
    MapResult,
)


def estimate(
    arch: Path,
    network: Path | NetSpec | ImportedSpec,
    ics: ICChoice | None = None,
    nir: NirOptions | None = None,
) -> EstimateResult:
    """SpikeSim energy per timestep of a network (`pipeline.session.network_spec`: a model
    file's, or an untrained geometry) on an architecture."""
    spec = network_spec(network, ics, nir)
    chip = load_arch(arch)
    graph = spec.graph()
    return EstimateResult(spec, chip, graph.layers, spikesim_energy(map_network(chip, graph)))


def map(  # the command's name (shadows the builtin here, which this module does not use)
    arch: Path,
    network: Path | NetSpec | ImportedSpec,
    ics: ICChoice | None = None,
    nir: NirOptions | None = None,
) -> MapResult:
    """A network (`pipeline.session.network_spec`) mapped onto crossbars, PEs, tiles and the
    mesh of an architecture, and the chip's area."""
    spec = network_spec(network, ics, nir)
    mapping = map_network(load_arch(arch), spec.graph())
    return MapResult(spec, mapping, chip_area(mapping))


def profile(
    model: Any,
    images: Images = 100,
    *,
    arch: str | Path | Architecture = "spikesim",
    timesteps: int = 100,
    labels: np.ndarray | Any | None = None,
    dataset: str | None = None,
    ics: ICChoice | None = None,
    coding: InputCoding | None = None,
    conversion: ConversionParams | None = None,
    nir: NirOptions | None = None,
    data_root: str | None = None,
    ties: Ties | None = None,
    batch_size: int = 250,
    threads: int = 0,
    progress: ProgressFn | None = None,
    warn: WarnFn | None = None,
) -> ProfileReport:
    """A network's energy per layer and component (pJ per image), latency (cycles, ns), area
    (mm^2), spike rates and accuracy on the chip `arch` (`hwsim.pipeline.profile`;
    docs/profile.md). `model`: a NIR graph, a .nir file, a sinabs or snntorch torch module
    (exported with the peer's own exporter), a checkpoint or converted model, or a `Session`;
    `images`: how many test images of the model's dataset (`dataset` for a NIR model), or the
    images themselves (N, C, H, W), with `labels` (N,) if known."""
    result = profile_model(
        model, images, arch=arch, timesteps=timesteps, labels=labels, dataset=dataset, ics=ics,
        coding=coding, conversion=conversion, nir=nir, data_root=data_root, ties=ties,
        batch_size=batch_size, threads=threads, progress=progress, warn=warn,
    )  # fmt: skip
    return ProfileReport.of(result)


def functional(cfg: CodesignConfig, progress: ProgressFn | None = None) -> FunctionalResult:
    """The co-design sweep (`pipeline.hardware.codesign`): FC (and IC) accuracy and energy per
    inference on the chip against one knob, with the ideal engine as the reference;
    progress(stage, done, total) after each knob value."""
    return codesign_sweep(cfg, progress)


def calibrate(
    arch: Path, measurements: Path, out: Path, free: tuple[str, ...] = ()
) -> CalibrationResult:
    """Fit the cost-table entries `free` (`KEY[=LO:HI]`, e.g. `energy_pj.adc=0:10`; empty: the
    measurement file's `# free:` lines) of the architecture file `arch` to the measured numbers
    in `measurements` by bounded least squares, and write the calibrated file to `out`
    (`hwsim.hw.calibrate`: residuals, standard errors, leave-one-out errors)."""
    inputs = [("arch", arch), ("measurements", measurements)]
    check_output_file(out, "out", inputs, is_calibrated_yaml, "calibrated architecture file")
    entries = [FreeEntry.parse(text) for text in free] or None
    return fit_cost_table(arch, measurements, out, entries)


def ablation(
    arch: Path,
    base: Path,
    network: Path | NetSpec | ImportedSpec,
    ics: ICChoice | None = None,
    *,
    timesteps: int = 300,
    spike_rate: float = 0.1,
    nir: NirOptions | None = None,
) -> AblationResult:
    """One image of `network` (`pipeline.session.network_spec`) on the chip `arch`, from SpikeSim's
    model (`base`) to `arch` with each effect SpikeSim leaves out added in turn (pipelining,
    partial sums, static power, off-chip I/O, the physical rest; `hwsim.hw.ablation`), every PE
    operation performed and neurons spiking at `spike_rate` for `timesteps` steps."""
    if timesteps < 1:
        raise InputError(f"{{timesteps}} {timesteps}: expected >= 1", params=("timesteps",))
    spec = network_spec(network, ics, nir)
    full, spikesim = load_arch(arch), load_arch(base)
    graph = spec.graph()
    activity = rate_activity(map_network(spikesim, graph), timesteps, spike_rate)
    result = run_ablation(spikesim, full, graph, activity)
    return AblationResult(spec, spikesim, full, timesteps, spike_rate, result)
