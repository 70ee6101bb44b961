"""The command line: exit codes, messages that name the bad input, no partial outputs."""

import pandas as pd
import pytest

from hwsim.cli.main import main
from hwsim.cli.options import parse_ic_list

ARCH = "arch_configs/spikesim.yaml"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())


def test_run_writes_reports(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    out = tmp_path / "out"
    code, text = run_cli(
        capsys, "run", "--arch", ARCH, "--model", str(path), "--ic", "4",
        "--timesteps", "30", "--images", "32", "--tune-images", "32", "--out", str(out),
        "--traces", str(tmp_path / "traces"),
    )  # fmt: skip
    assert code == 0, text
    assert "BSF-Grid" in text and "tile_buffer" in text
    frame = pd.read_csv(out / "accuracy_energy.csv")
    assert len(frame) == 30


def test_run_timing_cycle_writes_the_chip_reports_and_analytic_does_not(
    tiny_checkpoint, tmp_path, capsys
):
    _, path = tiny_checkpoint
    common = ["run", "--arch", ARCH, "--model", str(path), "--ic", "4", "--timesteps", "30"]
    common += ["--images", "32", "--tune-images", "32", "--traces", str(tmp_path / "traces")]
    common += ["--target", "0.5"]  # an early-stop run only when the tuning meets the target
    code, text = run_cli(capsys, *common, "--out", str(tmp_path / "cycle"))
    assert code == 0, text
    assert "Cycle-level chip" in text and "bottleneck" in text
    rows = pd.read_csv(tmp_path / "cycle" / "cycle_methods.csv")
    assert set(rows["operating_point"]) == {"fixed-T", "early-stop"}
    assert (rows["latency_p99_us"] >= rows["latency_mean_us"] - 1e-9).all()
    breakdown = pd.read_csv(tmp_path / "cycle" / "latency_breakdown.csv")
    assert breakdown["node"].iloc[-1] == "fusion_unit"
    for name in ("noc_links.csv", "fusion_unit.csv", "link_utilisation.svg"):
        assert (tmp_path / "cycle" / name).exists()
    code, text = run_cli(capsys, *common, "--timing", "analytic", "--out", str(tmp_path / "a"))
    assert code == 0, text
    assert "Cycle-level chip" not in text
    assert not (tmp_path / "a" / "cycle_methods.csv").exists()


def test_cycle_timing_refuses_a_trace_without_per_image_activity(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    given = tmp_path / "given"
    code, text = run_cli(
        capsys, "trace", "--model", str(path), "--timesteps", "20", "--images", "8",
        "--traces", str(tmp_path / "traces"), "--out", str(given),
    )  # fmt: skip
    assert code == 0, text
    code, text = run_cli(
        capsys, "run", "--arch", ARCH, "--model", str(path), "--ic", "4", "--timesteps", "20",
        "--trace", str(given), "--tune-images", "8", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2
    assert f"--trace {given}" in text and "--timing analytic" in text
    assert not (tmp_path / "out").exists()


def test_estimate_writes_breakdown(tmp_path, capsys):
    code, text = run_cli(
        capsys, "estimate", "--arch", ARCH, "--net", "vgg19", "--input", "3x32x32",
        "--classes", "10", "--ic", "5", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, text
    frame = pd.read_csv(tmp_path / "energy_breakdown.csv")
    assert list(frame["layer"][-4:]) == ["ic5.gap", "ic5.linear", "fc.gap", "fc.linear"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "--model", "nope.pt"], "nope.pt"),
        (["estimate", "--input", "3x32"], "expected CxHxW"),
        (["estimate", "--ic", "x"], "--ic"),
        (["estimate", "--ic", "20"], "IC position 20"),
        (["estimate", "--arch", "missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_input_exits_non_zero_with_a_named_cause(argv, needle, capsys, tmp_path):
    code, text = run_cli(capsys, *argv, "--out", str(tmp_path / "o"))
    assert code == 2
    assert needle in text
    assert not (tmp_path / "o").exists()


def test_bad_arch_file_is_named(tmp_path, capsys, tiny_checkpoint):
    _, path = tiny_checkpoint
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nclock_mhz: -5\n")
    code, text = run_cli(capsys, "run", "--arch", str(bad), "--model", str(path), "--out",
                         str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "bad.yaml" in text
    assert not (tmp_path / "o").exists()


def test_ic_list_forms():
    assert parse_ic_list("3:5") == (3, 4, 5)
    assert parse_ic_list("8,3,3") == (3, 8)
    assert parse_ic_list("all") == "all"  # resolved by the API: the model's ICs, or every block
    assert parse_ic_list("none") == ()


def test_tune_writes_luts_that_run_reuses(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import json

    import hwsim.pipeline.cache as cache

    _, path = tiny_checkpoint
    traces = tmp_path / "traces"
    common = ["--model", str(path), "--timesteps", "30", "--traces", str(traces)]
    code, text = run_cli(capsys, "tune", *common, "--ic", "4", "--tune-images", "32")
    assert code == 0, text
    files = list(traces.glob("*/tuning-ic4-joint.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert set(stored["tuning"]["luts"]) == {"BSF-Grid", "BSF-Emp"}

    def no_tuning(*a, **k):
        raise AssertionError("re-tuned although a stored tuning exists")

    monkeypatch.setattr(cache, "tune_methods", no_tuning)
    code, text = run_cli(
        capsys, "run", "--arch", ARCH, *common, "--ic", "4", "--images", "16",
        "--tune-images", "32", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, text


def test_map_prints_and_writes_the_mapping(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    code, text = run_cli(capsys, "map", "--arch", ARCH, "--model", str(path), "--out",
                         str(tmp_path))  # fmt: skip
    assert code == 0, text
    frame = pd.read_csv(tmp_path / "mapping.csv")
    assert "conv0" in set(frame["layer"]) and "ic4.linear" in set(frame["layer"])
    assert "mm^2" in text


def test_functional_codesign_writes_csv_and_figure(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    argv = ["functional", "--arch", ARCH, "--model", str(path), "--images", "8"]
    argv += ["--timesteps", "20", "--adc-bits", "4,12", "--first-layer", "digital"]
    code, text = run_cli(capsys, *argv, "--out", str(tmp_path / "f"))
    assert code == 0, text
    assert "100.00%" in text  # 12-bit ADC: every FC output spike equals the ideal engine's
    frame = pd.read_csv(tmp_path / "f" / "codesign.csv")
    assert frame["hardware"].tolist() == ["functional", "functional", "ideal", "ideal_quantised"]
    assert frame["value"].tolist()[:2] == [4, 12] and (tmp_path / "f" / "codesign.png").is_file()
    # an ADC's energy grows with its bits (Walden): 12 bits cost more per inference than 4
    assert frame["energy_pj"][1] > frame["energy_pj"][0]
    code, text = run_cli(capsys, *argv[:-4], "--adc-bits", "4", "--variation-sigma", "0.1")
    assert code == 2 and "one knob" in text


def test_run_on_the_functional_chip(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    out = tmp_path / "out"
    code, text = run_cli(
        capsys, "run", "--arch", ARCH, "--model", str(path), "--ic", "4", "--hardware",
        "functional", "--variation-sigma", "0.05", "--timesteps", "12", "--images", "8",
        "--tune-images", "8", "--out", str(out), "--traces", str(tmp_path / "traces"),
    )  # fmt: skip
    assert code == 0, text
    assert len(pd.read_csv(out / "accuracy_energy.csv")) == 12
    assert not (out / "cycle_methods.csv").exists()  # analytic timing by default here
    code, text = run_cli(
        capsys, "run", "--arch", ARCH, "--model", str(path), "--hardware", "functional",
        "--timing", "cycle", "--out", str(tmp_path / "refused"),
    )  # fmt: skip
    assert code == 2 and "--timing cycle" in text and "--timing analytic" in text
    assert not (tmp_path / "refused").exists()


def test_interrupted_sweep_resumes_from_its_partial_file(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
):
    import hwsim.pipeline.grid as grid

    _, path = tiny_checkpoint
    out, traces = tmp_path / "sweep", tmp_path / "traces"
    argv = ["sweep", "--arch", ARCH, "--model", str(path), "--ic-positions", "2,4"]
    argv += ["--timesteps", "20", "--images", "16", "--tune-images", "16"]
    argv += ["--traces", str(traces), "--out", str(out)]
    real = grid.evaluate_cell

    def interrupted(cell, *args, **kwargs):  # Ctrl-C while the second cell (IC 4) runs
        if cell.ic == 4:
            raise KeyboardInterrupt
        return real(cell, *args, **kwargs)

    monkeypatch.setattr(grid, "evaluate_cell", interrupted)
    code, text = run_cli(capsys, *argv)
    assert code == 130, text
    partial = pd.read_csv(out / "sweep.partial.csv")
    assert list(partial["ic"]) == [2] and not (out / "sweep.csv").exists()
    # a marker value in the kept row shows that it is not recomputed
    partial.assign(ann_accuracy_ic=0.123).to_csv(out / "sweep.partial.csv", index=False)
    monkeypatch.undo()
    code, text = run_cli(capsys, *argv)
    assert code == 0, text
    assert "resuming: 1 of 2 cells" in text
    again = pd.read_csv(out / "sweep.csv")
    assert list(again["ic"]) == [2, 4] and not (out / "sweep.partial.csv").exists()
    assert again["ann_accuracy_ic"].iloc[0] == 0.123  # kept, not recomputed
    assert again["ann_accuracy_ic"].iloc[1] != 0.123
    # the configuration it used is written beside it and repeats it
    code, text = run_cli(capsys, "sweep", "--config", str(out / "config.yaml"), "--out",
                         str(tmp_path / "repeat"))  # fmt: skip
    assert code == 0, text
    repeat = pd.read_csv(tmp_path / "repeat" / "sweep.csv")
    assert list(repeat["ic"]) == [2, 4] and (tmp_path / "repeat" / "config.yaml").is_file()
    code, text = run_cli(capsys, *argv)  # a rerun replaces the folder, config.yaml with it
    assert code == 0, text


@pytest.mark.parametrize("command", ["run", "export"])
@pytest.mark.parametrize(("flag", "value"), [("--dataset", "mnist5k"), ("--fc-output", "fc"),
                                             ("--convention", "snntorch")])  # fmt: skip
def test_nir_options_without_a_nir_model_are_refused_by_name(command, flag, value, tmp_path,
                                                             capsys):  # fmt: skip
    out = tmp_path / ("o.nir" if command == "export" else "o")
    code, text = run_cli(capsys, command, "--model", "vgg19", flag, value, "--out", str(out))
    assert code == 2, text
    assert f"{flag} applies only to NIR models (.nir)" in text
    assert not out.exists()


def test_trace_command_writes_a_readable_trace(tiny_checkpoint, tmp_path, capsys):
    from hwsim.engine.trace import read_trace

    _, path = tiny_checkpoint
    code, text = run_cli(capsys, "trace", "--model", str(path), "--timesteps", "15", "--images",
                         "8", "--split", "test", "--traces", str(tmp_path / "cache"),
                         "--out", str(tmp_path / "t"))  # fmt: skip
    assert code == 0, text
    t = read_trace(tmp_path / "t")
    assert t.key.timesteps == 15 and t.key.images == 8 and t.key.split == "test"
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 2 and cached[0] == "models"  # the trace also cached, beside the
    assert [p.name[:4] for p in (tmp_path / "cache" / "models").iterdir()] == ["snn-"]  # SNN


def test_convert_writes_a_model_that_run_accepts(tiny_checkpoint, tmp_path, capsys):
    import torch

    from hwsim.api import Session
    from hwsim.model.convert import ConversionParams

    _, path = tiny_checkpoint
    out = tmp_path / "snn.pt"
    code, text = run_cli(capsys, "convert", "--model", str(path), "--out", str(out))
    assert code == 0, text
    payload = torch.load(out, weights_only=True)  # weights only: no code in the file
    assert payload["params"]["percentile"] == 99.9 and len(payload["fingerprint"]) == 64
    converted = Session.open(out, None, ConversionParams())
    fresh = Session.open(path, None, ConversionParams())
    assert converted.snn.fingerprint() == fresh.snn.fingerprint()  # the same SNN
    code, text = run_cli(capsys, "trace", "--model", str(out), "--timesteps", "5", "--images",
                         "4", "--no-cache")  # fmt: skip
    assert code == 0, text
    # refusing to overwrite its own input
    code, text = run_cli(capsys, "convert", "--model", str(path), "--out", str(path))
    assert code == 2 and "input model" in text


def test_event_model_runs_on_an_unrolled_mapping(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    dl_pj = {}
    for model in ("event", "spikesim"):
        out = tmp_path / model
        code, text = run_cli(
            capsys, "run", "--arch", "arch_configs/isaac_like.yaml", "--model", str(path),
            "--energy-model", model, "--timesteps", "20", "--images", "8", "--tune-images", "8",
            "--traces", str(tmp_path / "traces"), "--out", str(out),
        )  # fmt: skip
        assert code == 0, text
        dl_pj[model] = pd.read_csv(out / "accuracy_energy.csv")["energy_dl_pj"].iloc[-1]
    assert 0 < dl_pj["event"] < dl_pj["spikesim"]


def test_no_cache_writes_nothing_and_says_so(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    traces = tmp_path / "traces"
    common = ["--model", str(path), "--timesteps", "12", "--traces", str(traces), "--no-cache"]
    code, text = run_cli(capsys, "tune", *common, "--ic", "4", "--tune-images", "16")
    assert code == 0, text
    assert "not stored" in text
    code, text = run_cli(capsys, "trace", *common, "--images", "4")
    assert code == 0, text
    assert "not stored (--no-cache)" in text
    assert not traces.exists()  # neither the trace nor the tuning was cached


def test_tune_table_shows_alpha_only_at_timesteps_that_exist(tiny_checkpoint, tmp_path, capsys):
    _, path = tiny_checkpoint
    argv = ["tune", "--model", str(path), "--timesteps", "30", "--ic", "4"]
    code, text = run_cli(capsys, *argv, "--tune-images", "16", "--traces", str(tmp_path / "t"))
    assert code == 0, text
    assert "alpha t=10" in text and "alpha t=30" in text and "t=100" not in text


def test_help_loads_no_heavy_stage_and_hwsim_leaves_the_plot_backend_alone():
    """`hwsim --help` imports neither torch nor numba (they load when a command runs), and
    importing hwsim's figures and report does not switch matplotlib's backend."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, matplotlib; matplotlib.use('pdf');"
        "from hwsim.cli.main import build_parser; build_parser().format_help();"
        "print(sorted({'torch', 'numba', 'scipy', 'pandas'} & set(sys.modules)));"
        "import hwsim.report.tables, hwsim.report.files, hwsim.report.figures;"
        "print(matplotlib.get_backend())"
    )
    env = {**os.environ, "MPLBACKEND": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "pdf"]


def test_every_parameter_an_error_names_has_a_flag():
    """An error names API parameters (`HwsimError.params`); the command line prints each as its
    flag, from one table: every parameter named in hwsim's source is in it."""
    import re
    from pathlib import Path

    import hwsim
    from hwsim.cli.errors import API_ONLY, FLAGS

    named = set()
    for path in Path(hwsim.__file__).parent.rglob("*.py"):
        for group in re.findall(r"params=\(([^)]*)\)", path.read_text()):
            named |= set(re.findall(r"\"(\w+)\"", group))
    assert named and named <= set(FLAGS) | API_ONLY, sorted(named - set(FLAGS) - API_ONLY)
    assert not API_ONLY & set(FLAGS)


def test_an_api_error_names_parameters_and_the_cli_its_flags(tiny_checkpoint, tmp_path, capsys):
    from hwsim.api import SimConfig, trace
    from hwsim.errors import InputError

    _, path = tiny_checkpoint
    with pytest.raises(InputError) as e:
        trace(path, SimConfig(timesteps=4), "test", 10**6, trace_root=None)
    assert e.value.param == "images" and str(e.value).startswith("images 1000000: the synthetic")
    code, text = run_cli(capsys, "trace", "--model", str(path), "--timesteps", "4", "--images",
                         "1000000", "--no-cache")  # fmt: skip
    assert code == 2 and "error: --images 1000000: the synthetic test split has" in text


def test_a_bug_is_not_reported_as_bad_input(monkeypatch, tmp_path, capsys):
    """A plain ValueError (or any other exception) is a bug in hwsim: exit status 1 and a
    request to report it, never the exit status 2 of bad input; --debug shows the traceback."""
    import hwsim.api as api

    def broken(*args, **kwargs):
        raise ValueError("an internal invariant failed")

    monkeypatch.setattr(api, "estimate", broken)
    argv = ["estimate", "--out", str(tmp_path)]
    code, text = run_cli(capsys, *argv)
    assert code == 1 and "internal error: ValueError: an internal invariant failed" in text
    assert "please report it" in text and "--debug" in text
    with pytest.raises(ValueError, match="internal invariant"):
        main(["--debug", *argv])


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--model", "{tmp}/missing.pt"], "missing.pt: no such file"),
        (["--arch", "{tmp}/missing.yaml"], "missing.yaml: no such file"),
        (["--data-root", "{tmp}/missing"], "missing: no such file"),
        (["--model", "vgg19_fashion", "--data-root", "{tmp}"], "train-images-idx3-ubyte: missing"),
        (
            ["--model", "{tmp}/net.nir", "--dataset", "cifar10", "--data-root", "{tmp}"],
            "data_batch_1: missing",
        ),
    ],
)
def test_a_missing_model_arch_or_data_file_fails_before_torch_loads(tmp_path, args, named):
    """Exit 2 with the file named, and neither torch nor numba imported: a missing model,
    architecture, data root or data file (a checkpoint's dataset is read without torch)."""
    import os
    import subprocess
    import sys

    (tmp_path / "net.nir").write_bytes(b"")  # there: its data files are what is missing
    argv = ["run", *(a.format(tmp=tmp_path) for a in args)]
    code = (
        "import sys; from hwsim.cli.main import main; code = main(sys.argv[1:]);"
        "print(code, sorted({'torch', 'numba'} & set(sys.modules)))"
    )
    env = {**os.environ, "COLUMNS": "500"}  # one line: rich wraps at the terminal's width
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert out.stdout.split("\n")[0] == "2 []", (out.stdout, out.stderr)
    assert named in out.stderr, out.stderr
