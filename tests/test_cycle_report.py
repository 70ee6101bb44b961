"""The cycle-level report (issues 22, 24, 29): with an architecture that models static power
and off-chip I/O, cycle_methods.csv and the console show each method's static and off-chip
energy per inference (the cycle evaluation's `MethodTiming.static_pj`, `offchip_pj`), empty
where the architecture leaves them out; the console names the timing's bottleneck (a layer or
a link) and the tie rule; fusion_unit.csv names the tie rule and blanks a missed early stop."""

import re

import pandas as pd
import pytest

from hwsim.cli.main import main
from hwsim.hw.arch import load_arch

CHIP = "arch_configs/spikesim_chip.yaml"
SPIKESIM = "arch_configs/spikesim.yaml"


@pytest.fixture(scope="module")
def runs(tiny_checkpoint, tmp_path_factory):
    _, model = tiny_checkpoint
    tmp = tmp_path_factory.mktemp("cycle_report")
    out = {}
    for name, arch in (("chip", CHIP), ("spikesim", SPIKESIM)):
        argv = ["run", "--arch", arch, "--model", str(model), "--ic", "4", "--timesteps", "20",
                "--images", "16", "--tune-images", "16", "--threads", "1",
                "--traces", str(tmp / "t"), "--out", str(tmp / name)]  # fmt: skip
        out[name] = tmp / name
        assert main(argv) == 0
    return out


def test_static_and_offchip_energy_are_shown_where_the_arch_models_them(runs):
    chip = load_arch(CHIP)
    assert chip.leakage_mw is not None and chip.offchip is not None
    frame = pd.read_csv(runs["chip"] / "cycle_methods.csv")
    static = frame["static_energy_per_inference_pj"]
    offchip = frame["offchip_energy_per_inference_pj"]
    assert (static > 0).all() and (offchip > 0).all()
    # parts of the energy per inference; every image pays the same input and result
    assert (static + offchip < frame["energy_per_inference_pj"]).all()
    assert offchip.nunique() == 1
    plain = pd.read_csv(runs["spikesim"] / "cycle_methods.csv")
    assert plain["static_energy_per_inference_pj"].isna().all()
    assert plain["offchip_energy_per_inference_pj"].isna().all()


def test_the_console_names_the_bottleneck_and_the_tie_rule(tiny_checkpoint, tmp_path, capsys):
    _, model = tiny_checkpoint
    argv = ["run", "--arch", CHIP, "--model", str(model), "--ic", "4", "--timesteps", "20",
            "--images", "16", "--tune-images", "16", "--threads", "1", "--ties", "first",
            "--traces", str(tmp_path / "t"), "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(r"\(bottleneck \S+: the busiest layer or link\)", text), text
    assert "static (leakage) and off-chip I/O parts" in text
    assert "ties: the first tied class wins (argmax)" in text
    assert "early stop, a tie at T: the first tied class wins" in text
    for name in ("targets.csv", "budgets.csv", "fusion_unit.csv"):
        assert set(pd.read_csv(tmp_path / "r" / name)["ties"]) == {"first"}, name
