"""The typed API behind the CLI: `run` (checkpoint + arch -> accuracy/energy report) and
`estimate` (an untrained geometry -> SpikeSim energy per timestep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from hwsim.convert import ConversionParams, SpikingNetwork, convert
from hwsim.data import ImageSet, load_dataset
from hwsim.engine import SimResult, simulate
from hwsim.fusion import AlphaSchedule, accuracy_over_time, cumulative, grid_search_alpha
from hwsim.hw.arch import Architecture, load_arch
from hwsim.hw.energy import EnergyBreakdown, spikesim_energy
from hwsim.hw.layers import FC_HEAD, LayerGeometry
from hwsim.metrics import Curve, TargetResult, reduction, to_target
from hwsim.nets import Checkpoint, ModelError, NetSpec, layer_geometry, load_checkpoint

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total) callback, e.g. a rich progress bar."""


@dataclass(frozen=True)
class RunConfig:
    """What `hwsim run` simulates."""

    arch: Path
    model: Path
    ic: int | None = None  # None: the shallowest IC whose ANN accuracy reaches the target
    timesteps: int = 300
    images: int | None = None  # test images (None: the whole test split)
    tune_images: int = 1000  # training images for alpha selection
    target_fraction: float = 0.99  # of the ANN's FC accuracy on the same test images
    data_root: str | None = None
    batch_size: int = 250
    conversion: ConversionParams = ConversionParams()


@dataclass(frozen=True)
class RunResult:
    """Everything `hwsim run` reports."""

    config: RunConfig
    arch: Architecture
    spec: NetSpec
    ic: int
    ann_accuracy: dict[int, float]  # on the simulated test images, per head
    target: float
    curves: dict[str, Curve]  # "DL" (FC only), "SL" (IC only), "BSF-Grid"
    targets: dict[str, TargetResult]
    reductions: dict[str, float | None]  # R of each fusion method vs DL (eq. 33)
    energy: EnergyBreakdown  # per timestep, the layers the run's hardware holds
    alpha: AlphaSchedule
    test_sim: SimResult
    seconds: float


def choose_ic(ckpt: Checkpoint, target_fraction: float) -> int:
    """The shallowest IC whose ANN accuracy reaches target_fraction x the FC's; else the best."""
    ics = list(ckpt.spec.ic_positions)
    if not ics:
        raise ModelError("the checkpoint has no IC heads; train one with `hwsim train --ic ...`")
    goal = target_fraction * ckpt.fc_accuracy
    good = [i for i in sorted(ics) if ckpt.accuracy.get(i, 0.0) >= goal]
    return good[0] if good else max(ics, key=lambda i: ckpt.accuracy.get(i, 0.0))


def _ann_accuracy(ckpt: Checkpoint, data: ImageSet) -> dict[int, float]:
    net = ckpt.build()
    with torch.no_grad():
        out = net(torch.from_numpy(data.x))
    return {h: float((v.argmax(1).numpy() == data.y).mean()) for h, v in out.items()}


def _head_layers(energy: EnergyBreakdown, heads: set[int | None]) -> EnergyBreakdown:
    return energy.select(lambda g: g.head in heads)


def _backbone_upto(energy: EnergyBreakdown, tap: int, ic: int) -> EnergyBreakdown:
    return energy.select(
        lambda g: (g.head is None and g.block is not None and g.block <= tap) or g.head == ic
    )


def run(cfg: RunConfig, progress: ProgressFn | None = None) -> RunResult:
    """Convert, simulate, tune alpha on training images, and report accuracy vs energy."""
    start = time.perf_counter()
    arch = load_arch(cfg.arch)
    ckpt = load_checkpoint(cfg.model)
    spec = ckpt.spec
    ic = choose_ic(ckpt, cfg.target_fraction) if cfg.ic is None else cfg.ic
    if ic not in spec.ic_positions:
        raise ModelError(
            f"{cfg.model}: no IC head at block {ic}; the checkpoint has ICs at"
            f" {', '.join(map(str, spec.ic_positions)) or 'none'}"
        )
    if cfg.timesteps < 1:
        raise ValueError(f"--timesteps must be >= 1, got {cfg.timesteps}")
    dataset = ckpt.dataset["name"]
    seed = int(ckpt.dataset.get("split_seed", 0))
    train_set = load_dataset(dataset, "train", cfg.data_root, seed=seed)
    test_set = load_dataset(dataset, "test", cfg.data_root, seed=seed)
    if cfg.images is not None:
        test_set = test_set.take(cfg.images)
    tune_set = train_set.take(min(cfg.tune_images, len(train_set)))

    snn = _only_heads(convert(ckpt, train_set, cfg.conversion), (ic, FC_HEAD))
    sims: dict[str, SimResult] = {}
    for stage, data in (("tune", tune_set), ("test", test_set)):
        done = 0

        def tick(n: int, stage: str = stage, total: int = len(data)) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(stage, done, total)

        if progress is not None:
            progress(stage, 0, len(data))
        sims[stage] = simulate(snn, data.x, cfg.timesteps, batch_size=cfg.batch_size, on_batch=tick)

    tune_fc, tune_ic = (cumulative(sims["tune"].head_spikes[h]) for h in (FC_HEAD, ic))
    alpha = grid_search_alpha(tune_fc, tune_ic, tune_set.y)
    test_fc, test_ic = (cumulative(sims["test"].head_spikes[h]) for h in (FC_HEAD, ic))

    energy_all = spikesim_energy(arch, layer_geometry(spec))
    tap = spec.tap_block(ic)
    e_dl = _head_layers(energy_all, {None, FC_HEAD}).total_pj
    e_sl = _backbone_upto(energy_all, tap, ic).total_pj
    e_bsf = _head_layers(energy_all, {None, FC_HEAD, ic}).total_pj
    curves = {
        "DL": Curve("DL", accuracy_over_time(test_fc, test_set.y), e_dl),
        "SL": Curve("SL", accuracy_over_time(test_ic, test_set.y), e_sl),
        "BSF-Grid": Curve(
            "BSF-Grid", accuracy_over_time(alpha.fuse(test_fc, test_ic), test_set.y), e_bsf
        ),
    }
    ann = _ann_accuracy(ckpt, test_set)
    target = cfg.target_fraction * ann[FC_HEAD]
    targets = {name: to_target(c, target) for name, c in curves.items()}
    reductions = {
        name: reduction(targets["DL"].energy_pj, targets[name].energy_pj)
        for name in curves
        if name.startswith("BSF")
    }
    return RunResult(
        config=cfg,
        arch=arch,
        spec=spec,
        ic=ic,
        ann_accuracy=ann,
        target=target,
        curves=curves,
        targets=targets,
        reductions=reductions,
        energy=_head_layers(energy_all, {None, FC_HEAD, ic}),
        alpha=alpha,
        test_sim=sims["test"],
        seconds=time.perf_counter() - start,
    )


def _only_heads(snn: SpikingNetwork, heads: tuple[int, ...]) -> SpikingNetwork:
    return SpikingNetwork(
        snn.spec, snn.blocks, {h: snn.heads[h] for h in heads}, snn.params, snn.scales
    )


@dataclass(frozen=True)
class EstimateResult:
    spec: NetSpec
    arch: Architecture
    layers: tuple[LayerGeometry, ...]
    energy: EnergyBreakdown


def estimate(arch_path: Path, spec: NetSpec) -> EstimateResult:
    """SpikeSim energy per timestep of an untrained geometry (no checkpoint needed)."""
    arch = load_arch(arch_path)
    layers = tuple(layer_geometry(spec))
    return EstimateResult(spec, arch, layers, spikesim_energy(arch, layers))
