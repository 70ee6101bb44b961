"""`hwsim ablation` end to end: its CSV is `hwsim.hw.ablation`'s frame for the same geometry and
activity, and a bad spike rate is refused before any work."""

from pathlib import Path

import pandas as pd
import pytest

from hwsim.cli import main
from hwsim.hw.ablation import ABLATION_STEPS, ablation, rate_activity
from hwsim.hw.arch import load_arch
from hwsim.hw.mapping import map_network
from hwsim.model.netspec import NetSpec

ROOT = Path(__file__).resolve().parents[1]
BASE, FULL = ROOT / "arch_configs" / "spikesim.yaml", ROOT / "arch_configs" / "spikesim_chip.yaml"


def test_ablation_command_writes_the_library_s_steps(tmp_path):
    out = tmp_path / "abl"
    argv = ["ablation", "--arch", str(FULL), "--base", str(BASE), "--net", "vgg11"]
    argv += ["--width", "0.125", "--input", "1x28x28", "--classes", "10", "--ic", "none"]
    assert main([*argv, "--timesteps", "4", "--spike-rate", "0.25", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "ablation.csv")
    assert list(frame.step) == list(ABLATION_STEPS)
    graph = NetSpec("vgg11", 0.125, (1, 28, 28), 10, ()).graph()
    base, full = load_arch(BASE), load_arch(FULL)
    activity = rate_activity(map_network(base, graph), 4, 0.25)
    expected = ablation(base, full, graph, activity).to_frame()
    assert frame.latency_us.tolist() == pytest.approx(
        expected.latency_us.tolist(), rel=1e-9
    )  # the CSV's 10 significant digits
    assert frame.energy_uj.tolist() == pytest.approx(
        expected.energy_uj.tolist(), rel=1e-9
    )  # the CSV's 10 significant digits


def test_rate_activity_scales_the_spikes_not_the_operations():
    graph = NetSpec("vgg11", 0.125, (1, 28, 28), 10, ()).graph()
    mapping = map_network(load_arch(BASE), graph)
    half, full = rate_activity(mapping, 3, 0.5), rate_activity(mapping, 3, 1.0)
    assert (half.active_pe_ops == full.active_pe_ops).all()
    assert (half.output_spikes == (full.output_spikes * 0.5).round()).all()


def test_bad_spike_rate_is_refused(tmp_path, capsys):
    argv = ["ablation", "--net", "vgg11", "--input", "1x28x28", "--classes", "10"]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--spike-rate", "1.5", "--out", str(tmp_path / "o")])
    assert stop.value.code == 2 and "--spike-rate" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
