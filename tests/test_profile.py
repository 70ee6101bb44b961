"""`hwsim.profile` against the other entry points and a plain count: its energy, latency and
area are `run`'s, `estimate`'s and `map`'s for the same chip and images; its spike rates are
the step-by-step oracle's (tests/test_engine.py) counts; a NIR graph, its file, and the images
given as an array give the same report; bad inputs are refused naming the argument."""

import dataclasses
from pathlib import Path

import nir
import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

import hwsim
from hwsim.errors import InputError
from hwsim.hw.arch import EnergyModel, load_arch
from hwsim.model.convert import ConversionParams
from hwsim.model.nir_io import NirOptions
from hwsim.model.packaged import resolve_model
from hwsim.pipeline.config import RunConfig, SimConfig
from hwsim.pipeline.cycles import TimingModel
from hwsim.pipeline.session import Session
from tests.test_engine import oracle

ARCH = Path("arch_configs/spikesim.yaml")
STEPS, IMAGES, IC = 12, 8, 4


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint's SNN (IC 4 and the FC) as a NIR file."""
    _, model = tiny_checkpoint
    out = tmp_path_factory.mktemp("nir") / "tiny.nir"
    hwsim.export(model, out, ics=(IC,))
    return out


def _run(model: Path, energy_model: EnergyModel) -> hwsim.RunConfig:
    cfg = RunConfig(ARCH, model, SimConfig(timesteps=STEPS, threads=1), images=IMAGES,
                    tune_images=IMAGES, trace_root=None, energy_model=energy_model, ic=IC,
                    timing=TimingModel.ANALYTIC)  # fmt: skip
    return hwsim.run(cfg)


@pytest.mark.parametrize("energy_model", [EnergyModel.SPIKESIM, EnergyModel.EVENT])
def test_totals_are_runs_estimates_and_maps(tiny_checkpoint, energy_model):
    _, model = tiny_checkpoint
    arch = dataclasses.replace(load_arch(ARCH), energy_model=energy_model)
    report = hwsim.profile(model, IMAGES, arch=arch, timesteps=STEPS, ics=(IC,), threads=1)
    run = _run(model, energy_model).evaluation
    # run's chip holds the same layers; it also charges the fusion unit, which profile leaves out
    np.testing.assert_array_equal(report.energy.energy_pj, run.energy.energy_pj)
    assert report.energy_pj == pytest.approx(
        run.energy.total_pj - run.energy.fusion_pj.sum(), rel=1e-12
    )
    assert report.latency_cycles == run.timing.total_cycles
    assert report.latency_ns == pytest.approx(run.timing.total_ns)
    assert report.area_mm2 == hwsim.map(ARCH, model, ics=(IC,)).area.total_mm2
    frame = report.to_frame()
    assert frame["energy_pj"].sum() == pytest.approx(report.energy.energy_pj.sum(), rel=1e-12)
    per_component = report.energy_per_component_pj()
    assert sum(per_component.values()) == pytest.approx(report.energy_pj, rel=1e-12)
    if energy_model is EnergyModel.SPIKESIM:  # every PE operation every step: estimate x T
        estimate = hwsim.estimate(ARCH, model, ics=(IC,)).energy.per_layer_pj()
        got = dict(zip(frame["layer"], frame["energy_pj"], strict=True))
        assert got == pytest.approx({k: STEPS * v for k, v in estimate.items()}, rel=1e-12)
    assert set(report.accuracy) == {IC, -1} and 0 <= report.accuracy[-1] <= 1


@pytest.mark.slow  # the default model: about 30 s on 2 cores
def test_the_default_models_totals_are_runs():
    model = resolve_model("vgg19")
    report = hwsim.profile(model, 4, arch=ARCH, timesteps=10, ics=(8,), threads=1)
    cfg = RunConfig(ARCH, model, SimConfig(timesteps=10, threads=1), images=4, tune_images=4,
                    trace_root=None, ic=8, timing=TimingModel.ANALYTIC)  # fmt: skip
    run = hwsim.run(cfg).evaluation
    np.testing.assert_array_equal(report.energy.energy_pj, run.energy.energy_pj)
    assert report.latency_cycles == run.timing.total_cycles


def test_spike_rates_are_a_plain_count_of_the_oracle(tiny_checkpoint):
    _, model = tiny_checkpoint
    report = hwsim.profile(model, IMAGES, arch=ARCH, timesteps=STEPS, threads=1)
    session = Session.open(model, None, ConversionParams())
    x = session.images("test", IMAGES).x
    counts = oracle(session.snn, x, STEPS)["layer_spikes"].sum(axis=0)  # (L,) populations
    graph = session.snn.graph
    order = [g.population for g in graph.layers if g.sends_spikes]
    neurons = {p.name: p.neurons for p in graph.populations()}
    plain = {p: int(c) / (neurons[p] * STEPS * IMAGES) for p, c in zip(order, counts, strict=True)}
    assert report.spike_rates == pytest.approx(plain, rel=1e-12)
    assert any(r > 0 for r in plain.values())


def _same(a, b) -> None:
    """Two reports with the same numbers (the model's name may differ)."""
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert a.energy_pj == b.energy_pj and a.latency_cycles == b.latency_cycles
    assert a.area_mm2 == b.area_mm2 and a.spike_rates == b.spike_rates
    assert a.accuracy == b.accuracy


def test_graph_file_and_array_inputs_give_one_report(exported):
    kw = {"arch": ARCH, "timesteps": STEPS, "threads": 1}
    from_file = hwsim.profile(exported, IMAGES, dataset="synthetic", **kw)
    graph = nir.read(exported)
    _same(from_file, hwsim.profile(graph, IMAGES, dataset="synthetic", **kw))
    data = Session.open(exported, None, ConversionParams(), NirOptions(dataset="synthetic"))
    test = data.images("test", IMAGES)
    given = hwsim.profile(graph, torch.from_numpy(test.x), labels=test.y, **kw)
    _same(from_file, given)
    unlabelled = hwsim.profile(exported, test.x, **kw)
    assert unlabelled.accuracy is None and unlabelled.energy_pj == from_file.energy_pj
    console = Console(width=100, record=True)
    console.print(from_file)
    text = console.export_text()
    assert "energy per inference" in text and "fc.linear" in text


def test_export_target_is_passed_to_the_writer(tiny_checkpoint, tmp_path):
    _, model = tiny_checkpoint
    out = hwsim.export(model, tmp_path / "sj.nir", ics=(), target="spikingjelly").out
    assert nir.read(out).metadata["written_for"] == "spikingjelly"
    with pytest.raises(InputError) as e:
        hwsim.export(model, tmp_path / "x.nir", target="lava")
    assert e.value.params == ("target",)


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda m, n: hwsim.profile(m, np.zeros((2, 3, 16, 16), np.float32)), "images"),
        (lambda m, n: hwsim.profile(m, np.zeros((16, 16), np.float32)), "images"),
        (lambda m, n: hwsim.profile(m, 4, arch="no-such-chip"), "arch"),
        (lambda m, n: hwsim.profile(m, 4, timesteps=0), "timesteps"),
        (lambda m, n: hwsim.profile(m, 0), "images"),
        (lambda m, n: hwsim.profile(m, 4, ics=(3,)), "ics"),
        (lambda m, n: hwsim.profile(m, 4, dataset="synthetic"), "dataset"),
        (lambda m, n: hwsim.profile(n, 4), "images"),
        (lambda m, n: hwsim.profile(n, 4, dataset="imagenet"), "dataset"),
        (lambda m, n: hwsim.profile(n, np.zeros((2, 1, 16, 16)), labels=np.ones(3, int)), "labels"),
        (lambda m, n: hwsim.profile(torch.nn.Linear(2, 2), 4, dataset="synthetic"), "model"),
        (lambda m, n: hwsim.profile(object(), 4), "model"),
    ],
)
def test_bad_inputs_name_the_argument(tiny_checkpoint, exported, call, param):
    _, model = tiny_checkpoint
    with pytest.raises(InputError) as e:
        call(model, exported)
    assert param in e.value.params


def _sinabs_net():
    sinabs = pytest.importorskip("sinabs")
    from sinabs.activation import SingleSpike

    torch.manual_seed(0)

    def iaf():
        return sinabs.layers.IAFSqueeze(batch_size=1, spike_fn=SingleSpike)

    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), iaf(),
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), iaf(),
        sinabs.layers.SumPool2d(8), torch.nn.Flatten(),
        torch.nn.Linear(8, 10, bias=False), iaf(),
    )  # fmt: skip


def test_a_sinabs_module_is_exported_on_the_fly(tmp_path):
    sinabs = pytest.importorskip("sinabs")
    net = _sinabs_net()
    kw = {"arch": ARCH, "timesteps": STEPS, "threads": 1, "dataset": "synthetic"}
    report = hwsim.profile(net, 4, **kw)
    graph = sinabs.to_nir(net, torch.zeros(1, 1, 16, 16))
    graph.infer_types()
    _same(report, hwsim.profile(graph, 4, **kw))
    assert report.model == "Sequential" and report.energy_pj > 0


def test_a_leaky_snntorch_module_is_exported_and_read_as_leaky_neurons():
    """snntorch's Leaky exports as LIF, read under snntorch's convention (leaky neurons,
    docs/engine.md) and profiled."""
    snntorch = pytest.importorskip("snntorch")

    def leaky(n: int, **kw):
        return snntorch.Leaky(
            beta=torch.full((n,), 0.875), threshold=torch.full((n,), 1.0), init_hidden=True, **kw
        )

    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(256, 32), leaky(32),
        torch.nn.Linear(32, 10), leaky(10, output=True),
    )  # fmt: skip
    report = hwsim.profile(net, 2, arch=ARCH, timesteps=4, dataset="synthetic", threads=1)
    assert report.energy_pj > 0
