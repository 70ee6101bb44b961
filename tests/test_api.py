"""End to end: checkpoint + arch -> accuracy/energy curves, checked against independent sums."""

import numpy as np
import pandas as pd
import pytest

from hwsim.api import RunConfig, choose_ic, estimate, run
from hwsim.hw.arch import load_arch
from hwsim.hw.energy import pe_energy_components_pj
from hwsim.hw.layers import FC_HEAD
from hwsim.nets import ModelError, NetSpec
from hwsim.report import write_run

ARCH = "arch_configs/spikesim.yaml"


@pytest.fixture(scope="module")
def result(tiny_checkpoint):
    _, path = tiny_checkpoint
    cfg = RunConfig(arch=ARCH, model=path, ic=4, timesteps=40, images=64, tune_images=64)
    return run(cfg)


def test_curves_are_consistent_with_the_engine_spikes(result):
    fc = result.test_sim.head_spikes[FC_HEAD].sum(axis=1)  # total counts at T
    assert result.curves["DL"].accuracy.shape == (40,)
    assert 0.0 <= result.curves["DL"].accuracy.min() <= result.curves["DL"].accuracy.max() <= 1
    # one step of delay per layer: the image reaches the FC output after 8 blocks + GAP +
    # Linear = 10 steps; before that every image sees the same (bias-driven) spikes
    spikes = result.test_sim.head_spikes[FC_HEAD]
    assert (spikes[:, :10] == spikes[:1, :10]).all()
    assert not (spikes[:, 10:] == spikes[:1, 10:]).all()
    assert fc.sum() > 0


def test_energy_per_step_is_the_sum_of_spikesim_pe_energies(result):
    arch = load_arch(ARCH)
    x = arch.crossbar.rows
    total = 0.0
    for g in result.energy.layers:
        if g.kind.value == "linear":
            cin, kernel, out = -(-g.in_channels // 4), (4, 1), (1, 1)
        elif g.kind.value == "gap":
            cin, kernel, out = g.in_channels, g.kernel, (1, 1)
        else:
            cin, kernel, out = g.in_channels, g.kernel, g.out_hw
        ops = -(-g.out_channels // x) * -(-cin // x) * out[0] * out[1]
        total += ops * sum(pe_energy_components_pj(arch, kernel).values())
    dl = result.curves["DL"].energy_per_step_pj
    bsf = result.curves["BSF-Grid"].energy_per_step_pj
    assert bsf == pytest.approx(total)
    assert dl < bsf  # BSF also runs the IC head
    assert result.curves["SL"].energy_per_step_pj < dl


def test_target_and_reduction_follow_their_definitions(result):
    target = 0.99 * result.ann_accuracy[FC_HEAD]
    assert result.target == pytest.approx(target)
    for name, t in result.targets.items():
        acc = result.curves[name].accuracy
        if t.timestep is None:
            assert acc.max() < target
        else:
            assert acc[t.timestep - 1] >= target and (acc[: t.timestep - 1] < target).all()
    dl, bsf = result.targets["DL"].energy_pj, result.targets["BSF-Grid"].energy_pj
    if dl is not None and bsf is not None:
        assert result.reductions["BSF-Grid"] == pytest.approx(100 * (dl - bsf) / dl)


def test_written_files_have_units_and_one_row_per_step(result, tmp_path):
    paths = write_run(result, tmp_path)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    acc = pd.read_csv(tmp_path / "accuracy_energy.csv")
    assert len(acc) == 40 and "energy_dl_pj" in acc and "accuracy_bsf_grid" in acc
    np.testing.assert_allclose(acc["accuracy_dl"], result.curves["DL"].accuracy)
    breakdown = pd.read_csv(tmp_path / "energy_breakdown.csv")
    assert "adc_pj" in breakdown and "total_pj" in breakdown
    assert breakdown["total_pj"].sum() == pytest.approx(result.energy.total_pj)


def test_default_ic_is_the_shallowest_reaching_the_target(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint
    ic = choose_ic(ckpt, 0.99)
    goal = 0.99 * ckpt.fc_accuracy
    good = [i for i in ckpt.spec.ic_positions if ckpt.accuracy[i] >= goal]
    assert ic == (min(good) if good else max(ckpt.spec.ic_positions, key=ckpt.accuracy.get))


def test_unknown_ic_is_an_error(tiny_checkpoint):
    _, path = tiny_checkpoint
    with pytest.raises(ModelError, match="no IC head at block 3"):
        run(RunConfig(arch=ARCH, model=path, ic=3, timesteps=5, images=4, tune_images=4))


def test_estimate_counts_pe_operations_of_a_geometry():
    spec = NetSpec("vgg19", 1.0, (3, 32, 32), 10, (5,))
    r = estimate(ARCH, spec)
    first = r.energy.layers[0]
    assert first.name == "conv0"
    assert r.energy.pe_operations[0] == 1 * 1 * 32 * 32  # 64 out ch, 3 in ch, 32x32 output
    assert r.energy.pe_operations[1] == 1 * 1 * 32 * 32
    assert r.energy.pe_operations[8] == 8 * 4 * 4 * 4  # 512 out / 64, 256 in / 64, 4x4
