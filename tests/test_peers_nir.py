"""Peers through NIR (issue 25): each installed peer's own export read by hwsim (simulated with
the peer's output spikes, or refused naming the node and what hwsim's engine lacks), and
hwsim's export read back by each peer (docs/nir.md, "Peers").

References are the peers themselves (sinabs, snntorch, norse, spikingjelly, each simulating
its own module) and the nir package's node objects; every peer test skips when the peer is
not installed (constraints/peers.txt installs them)."""

import importlib.util
import json
import re

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from hwsim.engine import simulate  # noqa: E402
from hwsim.model.data import make_synthetic  # noqa: E402
from hwsim.model.graph import FC_HEAD  # noqa: E402
from hwsim.model.nir_convention import (  # noqa: E402
    PRESETS,
    Firing,
    PoolKind,
    Reset,
    read_neuron,
    read_pool,
)
from hwsim.model.nir_export import write_nir  # noqa: E402
from hwsim.model.nir_heads import add_ic_head  # noqa: E402
from hwsim.model.nir_io import NirError, import_graph, read_nir  # noqa: E402
from hwsim.model.nir_nodes import nir_module  # noqa: E402
from hwsim.model.nir_walk import topological_order  # noqa: E402

torch.set_num_threads(1)


def scaled(net, factor: float, grid: int | None) -> None:
    """Multiply every weight of `net`'s modules by `factor`, then (with `grid`) round it to a
    multiple of 1 / grid (dyadic weights: every summation order gives the same sums)."""
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight"):
                m.weight.mul_(factor)
                if grid is not None:
                    m.weight.copy_(torch.round(m.weight * grid) / grid)


def needs(*modules: str):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"{', '.join(missing)} not installed (pip install -c constraints/peers.txt, "
        "docs/nir.md)",
    )


def sinabs_net(n: int, dyadic: bool, threshold: float = 1.0, seed: int = 2):
    """Conv2d-IAF-Conv2d(stride 2)-IAF-SumPool2d(global)-Flatten-Linear-IAF on 16x16 images
    (no biases, SingleSpike), weights drawn with torch seed `seed`, scaled by 1.5; dyadic:
    every weight k / 2**5. Also tests/test_nir.py's sinabs network."""
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    def iaf():
        return sl.IAFSqueeze(batch_size=n, spike_fn=SingleSpike, spike_threshold=threshold)

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), iaf(),
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), iaf(),
        sl.SumPool2d(8), torch.nn.Flatten(), torch.nn.Linear(8, 10, bias=False), iaf(),
    )  # fmt: skip
    scaled(net, 1.5, 32 if dyadic else None)
    return net


def run_sinabs(net, x: np.ndarray, steps: int, record: int | None = None):
    """The sinabs module's last output (N, T, C) for `x` repeated `steps` times, and the
    spikes of its module `record` (N, T, ...) if asked."""
    n = len(x)
    seen = []
    if record is not None:
        net[record].register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    with torch.no_grad():
        xt = torch.from_numpy(x)[:, None].repeat(1, steps, 1, 1, 1).flatten(0, 1)
        out = net(xt).reshape(n, steps, -1).numpy()
    if record is None:
        return out, None
    return out, seen[0].reshape(n, steps, *seen[0].shape[1:]).numpy()


def if_nodes(graph, kinds: tuple[str, ...] = ("IF",)) -> list[str]:
    """The graph's IF nodes (or nodes of `kinds`) in a topological order."""
    order = topological_order(dict(graph.nodes), [(str(a), str(b)) for a, b in graph.edges])
    return [n for n in order if type(graph.nodes[n]).__name__ in kinds]


@needs("sinabs", "nirtorch")
@pytest.mark.parametrize("dyadic", [True, False])
def test_a_sinabs_network_with_an_added_ic_simulates_with_sinabs_spikes(dyadic, tmp_path):
    """sinabs' export, an IC added with add_ic_head on the first IAF population: hwsim reads
    the FC and the IC, and both spike as sinabs computes them (the IC by a sinabs head fed the
    recorded first-population spikes), shifted by hwsim's one step per population. Dyadic
    weights make every sum exact; on float weights the measured difference (torch's and the
    engine's summation orders) was 0 spikes in 8 x 40 x 10, so equality is asserted too."""
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    n, steps = 8, 40
    data = make_synthetic(n, seed=0, split="test")
    net = sinabs_net(n, dyadic)
    fc, first = run_sinabs(net, data.x, steps, record=1)
    graph = sinabs.to_nir(net, torch.from_numpy(data.x))
    graph.infer_types()
    tap = if_nodes(graph)[0]
    w_ic = np.round(np.random.default_rng(5).normal(0, 0.3, (10, 4)) * 32) / 32
    graph = add_ic_head(graph, tap, w_ic, map_shape=(4, 16, 16), name="ic")
    nir.write(tmp_path / "peer.nir", graph)
    snn = read_nir(tmp_path / "peer.nir")
    assert snn.graph.heads == (0, FC_HEAD) and snn.spec.output_name(0) == "ic"
    ic_head = torch.nn.Sequential(
        sl.SumPool2d(16), torch.nn.Flatten(), torch.nn.Linear(4, 10, bias=False),
        sl.IAFSqueeze(batch_size=n, spike_fn=SingleSpike),
    )  # fmt: skip
    with torch.no_grad():
        ic_head[2].weight.copy_(torch.from_numpy(w_ic))
        ic = ic_head(torch.from_numpy(first).flatten(0, 1)).reshape(n, steps, 10).numpy()
    depth = max(p.depth for p in snn.graph.populations())
    got = simulate(snn, data.x, steps + depth + 1).head_spikes
    assert fc.sum() > 0 and ic.sum() > 0
    np.testing.assert_array_equal(got[FC_HEAD][:, depth + 1 :], fc)
    ic_depth = snn.graph.head_output(0)
    shift = next(p.depth for p in snn.graph.populations() if p.name == ic_depth.population) + 1
    np.testing.assert_array_equal(got[0][:, shift : shift + steps], ic)


def snntorch_net(dyadic: bool, seed: int = 0):
    """Conv2d(1 -> 4)-Leaky(0.75)-Conv2d(4 -> 8, stride 2)-Leaky(0.875)-Flatten-Linear(512 ->
    10)-Leaky(0.5) on 16x16 images, threshold 1, no biases (a bias would integrate during
    hwsim's one-step delays), weights of torch seed `seed` times 4; dyadic: k / 2**8."""
    import snntorch as snn

    def leaky(shape, beta, **kw):
        return snn.Leaky(
            beta=torch.full(shape, beta), threshold=torch.full(shape, 1.0), init_hidden=True, **kw
        )

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), leaky((4, 16, 16), 0.75),
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), leaky((8, 8, 8), 0.875),
        torch.nn.Flatten(), torch.nn.Linear(512, 10, bias=False),
        leaky((10,), 0.5, output=True),
    )  # fmt: skip
    scaled(net, 4.0, 256 if dyadic else None)
    return net


def run_snntorch(net, x: np.ndarray, steps: int) -> np.ndarray:
    """The snntorch module's output spikes (N, T, C) for `x` at every step, from rest."""
    from snntorch import utils

    utils.reset(net)
    outs = []
    with torch.no_grad():
        for _ in range(steps):
            spk, _mem = net(torch.from_numpy(x))
            outs.append(spk.numpy().copy())
    return np.stack(outs, 1)


@needs("snntorch", "nirtorch")
@pytest.mark.parametrize("dyadic", [True, False])
def test_a_snntorch_leaky_conv_network_simulates_with_snntorch_spikes(dyadic):
    """snntorch writes Leaky(beta) as LIF(tau = dt / (1 - beta), r = tau / dt), dt = 1e-4, tau
    in float32: under its convention hwsim reads leak = beta and gain 1 (float32), fires at V >
    theta and subtracts the threshold at the next step after the leak (Leaky's reset_delay),
    and its engine's FC spikes equal snntorch's own run, shifted by hwsim's one step per
    population. Dyadic weights make every sum exact; on float weights (torch's and the
    engine's summation orders differ) the measured difference was 0 spikes in 8 x 60 x 10, so
    equality is asserted too."""
    from snntorch.export_nir import export_to_nir

    net = snntorch_net(dyadic)
    graph = export_to_nir(net, torch.rand(1, 1, 16, 16), ignore_dims=[0])
    lifs = [k for k, v in graph.nodes.items() if type(v).__name__ == "LIF"]
    spec = read_neuron(lifs[0], graph.nodes[lifs[0]], PRESETS["snntorch"])
    assert spec.leak == pytest.approx(0.75, rel=1e-7)  # snntorch computes tau in float32
    assert spec.gain == pytest.approx(1.0, rel=1e-6)
    assert spec.threshold == 1.0 and spec.reset is Reset.SUBTRACT and spec.firing is Firing.GT
    snn = import_graph(graph, convention="snntorch")
    pops = snn.graph.populations()
    assert [p.neuron.leak for p in pops] == [0.75, 0.875, 0.5]
    assert all(p.neuron.gain == 1 and p.neuron.strict and p.neuron.delayed_reset for p in pops)
    n, steps = 8, 60
    x = make_synthetic(n, seed=0, split="test").x
    if dyadic:
        x = (np.round(x * 64) / 64).astype(np.float32)
    theirs = run_snntorch(net, x, steps)
    depth = max(p.depth for p in pops)
    ours = simulate(snn, x, steps + depth + 1).head_spikes[FC_HEAD][:, depth + 1 :]
    assert theirs.sum() > 20
    np.testing.assert_array_equal(ours, theirs)


@needs("sinabs", "nirtorch")
@pytest.mark.parametrize("dyadic", [True, False])
def test_a_sinabs_lif_network_simulates_with_sinabs_spikes(dyadic):
    """sinabs writes LIF(tau_mem) as LIF(tau, r = 1) and steps it exactly (v <- alpha v + (1 -
    alpha) I, alpha = exp(-1 / tau), its default norm_input): under its convention hwsim reads
    sinabs' own float32 alpha and 1 - alpha, and its FC spikes equal sinabs' (shifted by
    hwsim's delays). Conv2d-LIF(4)-Conv2d(stride 2)-LIF(8)-SumPool2d-Flatten-Linear-LIF(2),
    no biases, SingleSpike; on float weights the measured difference was 0 spikes in 8 x 60 x
    10, so equality is asserted too."""
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    n, steps = 8, 60

    def lif(tau: float):
        return sl.LIFSqueeze(tau_mem=tau, batch_size=n, spike_fn=SingleSpike)

    torch.manual_seed(2)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), lif(4.0),
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), lif(8.0),
        sl.SumPool2d(8), torch.nn.Flatten(), torch.nn.Linear(8, 10, bias=False), lif(2.0),
    )  # fmt: skip
    scaled(net, 8.0, 32 if dyadic else None)
    x = make_synthetic(n, seed=0, split="test").x
    if dyadic:
        x = (np.round(x * 64) / 64).astype(np.float32)
    snn = import_graph(sinabs.to_nir(net, torch.zeros(n, 1, 16, 16)), convention="sinabs")
    alphas = [float(m.alpha_mem_calculated) for m in net if isinstance(m, sl.LIFSqueeze)]
    pops = snn.graph.populations()
    assert [p.neuron.leak for p in pops] == alphas
    assert [p.neuron.gain for p in pops] == [float(np.float32(1) - np.float32(a)) for a in alphas]
    theirs, _ = run_sinabs(net, x, steps)
    depth = max(p.depth for p in pops)
    ours = simulate(snn, x, steps + depth + 1).head_spikes[FC_HEAD][:, depth + 1 :]
    assert theirs.sum() > 100
    np.testing.assert_array_equal(ours, theirs)


def norse_iaf_net(dyadic: bool, thresholds=(1.0, 0.5, 2.0)):
    """Conv2d(1 -> 4)-IAFCell-Conv2d(4 -> 8, stride 2)-IAFCell-Conv2d(8 -> 10, 8x8: the
    classifier)-IAFCell on 16x16 images, zero biases (norse's export needs a bias), weights of
    torch seed 0 times 4; dyadic: k / 2**8. norse's export writes no Flatten (nirtorch maps
    it to None), hence the classifier conv."""
    import norse.torch as nt

    def iaf(v_th: float):
        return nt.IAFCell(nt.IAFParameters(v_th=torch.tensor(v_th), v_reset=torch.tensor(0.0)))

    torch.manual_seed(0)
    net = nt.SequentialState(
        torch.nn.Conv2d(1, 4, 3, padding=1), iaf(thresholds[0]),
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), iaf(thresholds[1]),
        torch.nn.Conv2d(8, 10, 8), iaf(thresholds[2]),
    )  # fmt: skip
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(4.0)
                m.bias.zero_()
                if dyadic:
                    m.weight.copy_(torch.round(m.weight * 256) / 256)
    return net


def run_stateful(net, x: np.ndarray, steps: int) -> np.ndarray:
    """A stateful peer module's output spikes (N, T, C) for `x` at every step, from rest:
    norse's SequentialState (out, state) or a spikingjelly module (reset first)."""
    outs, state = [], None
    with torch.no_grad():
        for _ in range(steps):
            if type(net).__module__.startswith("norse"):
                out, state = net(torch.from_numpy(x), state)
            else:
                out = net(torch.from_numpy(x))
            outs.append(out.reshape(len(x), -1).numpy().copy())
    return np.stack(outs, 1)


def spikes_as_hwsim(snn, x: np.ndarray, steps: int) -> np.ndarray:
    """hwsim's FC spikes (N, T, C) over the peer's T steps (shifted by hwsim's delays)."""
    depth = max(p.depth for p in snn.graph.populations())
    return simulate(snn, x, steps + depth + 1).head_spikes[FC_HEAD][:, depth + 1 :]


@needs("norse", "nirtorch")
@pytest.mark.parametrize("dyadic", [True, False])
def test_a_norse_iaf_network_simulates_with_norse_spikes(dyadic):
    """norse's IAFCell (v <- v + I, fires at v > v_th, v <- v_reset from v = v_reset) exports
    as IF(r = 1, v_threshold) without v_reset (read as 0); under norse's convention hwsim
    resets to 0 and fires at V > theta, the thresholds 1, 0.5 and 2 folded into the weights
    (theta = 1), and its FC spikes equal norse's own run (shifted by hwsim's delays). norse's
    export writes the sample's shape as the Input's, so it is given one unbatched image. On
    float weights the measured difference was 0 spikes in 8 x 60 x 10, asserted too."""
    import norse.torch as nt

    net = norse_iaf_net(dyadic)
    graph = nt.to_nir(net, torch.rand(1, 16, 16))
    snn = import_graph(graph, convention="norse")
    pops = snn.graph.populations()
    assert snn.params.threshold == 1.0
    assert all(p.neuron.reset_to == 0 == p.neuron.v_init and p.neuron.strict for p in pops)
    n, steps = 8, 60
    x = make_synthetic(n, seed=0, split="test").x
    if dyadic:
        x = (np.round(x * 64) / 64).astype(np.float32)
    theirs = run_stateful(net, x, steps)
    assert theirs.sum() > 100
    np.testing.assert_array_equal(spikes_as_hwsim(snn, x, steps), theirs)


@needs("norse", "nirtorch")
def test_a_norse_lif_export_is_refused_for_the_tau_it_writes():
    """norse 1.1.0 writes LIFBoxCell's tau as dt / tau_mem_inv (dt = 1e-3: 1e-5 s for its
    default 1 / tau_mem = 100 / s) where the time constant is 1 / tau_mem_inv, and its own
    from_nir reads tau_mem_inv = 1 / tau; at norse's dt the file's leak per step is 1 - 1e-3
    / 1e-5 = -99, refused naming the node."""
    import norse.torch as nt

    net = nt.SequentialState(torch.nn.Conv2d(1, 10, 16), nt.LIFBoxCell())
    graph = nt.to_nir(net, torch.rand(1, 16, 16))
    lif = next(k for k, v in graph.nodes.items() if type(v).__name__ == "LIF")
    assert float(np.unique(graph.nodes[lif].tau)[0]) == pytest.approx(1e-5)
    with pytest.raises(NirError, match=f"LIF '{lif}': its leak per step is -99"):
        import_graph(graph, convention="norse")


def spikingjelly_net(dyadic: bool, lif: bool):
    """Conv2d(1 -> 4)-node-Conv2d(4 -> 8, stride 2)-node-Flatten-Linear(512 -> 10)-node, no
    biases, hard resets: IFNode or LIFNode(tau 2, 4, 2; decay_input) at thresholds 1, 0.5 and
    2 resetting to 0, -0.25 and 0.5; weights of torch seed 0 times 4 (16 for LIF); dyadic: k /
    2**8."""
    from spikingjelly.activation_based import layer, neuron

    def node(v_th: float, v_reset: float, tau: float):
        if lif:
            return neuron.LIFNode(tau=tau, v_threshold=v_th, v_reset=v_reset)
        return neuron.IFNode(v_threshold=v_th, v_reset=v_reset)

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False), node(1.0, 0.0, 2.0),
        layer.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), node(0.5, -0.25, 4.0),
        layer.Flatten(), layer.Linear(512, 10, bias=False), node(2.0, 0.5, 2.0),
    )  # fmt: skip
    scaled(net, 16.0 if lif else 4.0, 256 if dyadic else None)
    return net


@needs("spikingjelly", "nirtorch")
@pytest.mark.parametrize("lif", [False, True], ids=["IFNode", "LIFNode"])
@pytest.mark.parametrize("dyadic", [True, False])
def test_a_spikingjelly_network_with_hard_resets_simulates_with_its_spikes(dyadic, lif):
    """spikingjelly writes IFNode as IF(r = 1 / dt, dt = 1e-4) and LIFNode(tau) as LIF(tau dt,
    r = 1, v_leak = v_reset), with v_reset (its hard reset; a soft reset does not export).
    Under its convention hwsim reads gain r / if_r = 1 (IF; LIF: leak 1 - 1 / tau, gain 1 /
    tau), fires at V >= theta, resets to v_reset / v_threshold (thresholds folded, theta = 1)
    and starts there, as spikingjelly does; its FC spikes equal spikingjelly's own run
    (shifted by hwsim's delays). On float weights the measured difference was 0 spikes in 8 x
    60 x 10 for both nodes, asserted too."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir

    net = spikingjelly_net(dyadic, lif)
    graph = export_to_nir(net, torch.rand(1, 1, 16, 16))
    first = if_nodes(graph, ("IF", "LIF"))[0]
    spec = read_neuron(first, graph.nodes[first], PRESETS["spikingjelly"])
    assert spec.gain == (0.5 if lif else 1.0) and spec.reset is Reset.TO_VALUE
    snn = import_graph(graph, convention="spikingjelly")
    pops = snn.graph.populations()
    assert [p.neuron.reset_to for p in pops] == [0.0, -0.5, 0.25]
    assert all(p.neuron.v_init == p.neuron.reset_to and not p.neuron.strict for p in pops)
    n, steps = 8, 60
    x = make_synthetic(n, seed=0, split="test").x
    if dyadic:
        x = (np.round(x * 64) / 64).astype(np.float32)
    functional.reset_net(net)
    theirs = run_stateful(net, x, steps)
    assert theirs.sum() > 100
    np.testing.assert_array_equal(spikes_as_hwsim(snn, x, steps), theirs)


def test_local_pooling_is_read_with_its_geometry_and_imported_as_a_conv():
    """A 2x2 stride-2 AvgPool2d is described (kind, kernel, stride, padding) and imports as
    a 2x2 stride-2 conv (tests/test_pooling.py simulates it)."""
    pool = nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))
    spec = read_pool("p", pool, (4, 16, 16))
    assert (spec.kind, spec.kernel, spec.stride, spec.is_global) == (
        PoolKind.AVG, (2, 2), (2, 2), False,
    )  # fmt: skip
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([1, 16, 16])),
        nir.Conv2d(None, np.ones((4, 1, 3, 3), np.float32), 1, 1, 1, 1, np.zeros(4, np.float32)),
        nir.IF(r=np.ones((4, 16, 16)), v_threshold=np.ones((4, 16, 16))),
        pool,
        nir.IF(r=np.ones((4, 8, 8)), v_threshold=np.ones((4, 8, 8))),
        nir.Output(output_type=np.array([4, 8, 8])),
    )
    with pytest.raises(NirError, match=re.escape("Output 'output' reads IF 'if_1' of shape")):
        import_graph(graph)  # the pooling imports; its output map is no classifier


def test_an_old_nir_is_refused_naming_both_versions(monkeypatch):
    """nir 1.0.4 (which older peers pin) lacks IF's v_reset; hwsim says so before using it."""
    monkeypatch.setattr("importlib.metadata.version", lambda _name: "1.0.4")
    with pytest.raises(NirError, match=r"installed is 1\.0\.4; hwsim needs nir>=1\.0\.6"):
        nir_module()


def test_an_unknown_convention_is_refused():
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([4])), nir.Output(output_type=np.array([4]))
    )
    with pytest.raises(NirError, match="--convention 'brian': expected one of hwsim, sinabs"):
        import_graph(graph, convention="brian")


# --------------------------------------------------------------------------- hwsim -> peers


def resets_to(graph) -> set[str]:
    """The neuron nodes of an hwsim export that reset to their v_reset (`metadata["neurons"]`,
    docs/nir.md): the others subtract the threshold."""
    steps = json.loads(graph.metadata.get("neurons", "{}"))
    return {n for n, step in steps.items() if step["reset_to"] is not None}


def load_peer(peer: str, graph, n: int):
    """The peer's own importer on `graph`, with the settings docs/nir.md gives for hwsim's
    neurons: sinabs' IAF/LIF with SingleSpike and no lower membrane bound (from_nir defaults:
    MultiSpike, min_v_mem = -threshold) and MembraneReset(v_reset) where the metadata's
    `neurons` reset to a potential; spikingjelly's IFNode/LIFNode with v_reset = None (its
    soft reset: subtract the threshold; NIR's IF reads as a hard reset) where they do not."""
    hard = resets_to(graph)
    if peer == "sinabs":
        import sinabs
        import sinabs.layers as sl
        from sinabs.activation import MembraneReset, SingleSpike

        module = sinabs.from_nir(graph, batch_size=n)
        for name, m in module.named_modules():
            if isinstance(m, sl.LIF):
                m.spike_fn, m.min_v_mem = SingleSpike, None
                if name in hard:
                    m.reset_fn = MembraneReset(float(np.ravel(graph.nodes[name].v_reset)[0]))
        return module
    if peer == "spikingjelly":
        from spikingjelly.activation_based.nir_exchange import from_nir

        module = from_nir.import_from_nir(graph)
        for name, m in module.named_modules():
            if type(m).__name__ == "_NIRStatefulModule" and name not in hard:
                m.module.v_reset = None
        return module
    if peer == "norse":
        import norse.torch as nt

        return nt.from_nir(graph)
    from snntorch.import_nir import import_from_nir

    return import_from_nir(graph)


def run_peer(peer: str, module, x: np.ndarray, steps: int) -> np.ndarray:
    """The peer module's output spikes (N, T, C) on `x` presented at every step."""
    xt = torch.from_numpy(x)
    with torch.no_grad():
        if peer == "sinabs":
            out, _ = module(xt[:, None].repeat(1, steps, 1, 1, 1).flatten(0, 1))
            return out.reshape(len(x), steps, -1).numpy()
        if peer in ("norse", "snntorch"):  # one image at a time: Flatten(0, -1) merges the batch
            rows = []
            for image in xt:
                if peer == "snntorch":  # its Leaky modules keep their membranes
                    from snntorch import utils

                    utils.reset(module)
                state, outs = None, []
                for _ in range(steps):
                    out, state = module(image, state)
                    outs.append(out.reshape(-1))
                rows.append(torch.stack(outs))
            return torch.stack(rows).numpy()
        state, outs = None, []
        for _ in range(steps):
            out, state = module(xt, state)
            outs.append(out.reshape(len(x), -1))
        return torch.stack(outs, 1).numpy()


def assert_weights_read(module, graph) -> None:
    """Every Conv2d / Affine of the file is a module of the peer with the same values."""
    mods = dict(module.named_modules())
    weighted = [k for k, v in graph.nodes.items() if type(v).__name__ in ("Conv2d", "Affine")]
    assert weighted
    for name in weighted:
        np.testing.assert_array_equal(
            mods[name].weight.detach().float().numpy(), graph.nodes[name].weight, err_msg=name
        )
        np.testing.assert_array_equal(
            mods[name].bias.detach().float().numpy(), graph.nodes[name].bias, err_msg=name
        )


PEERS = {
    "sinabs": ("sinabs", "nirtorch"),
    "norse": ("norse", "nirtorch"),
    "snntorch": ("snntorch", "nirtorch"),
    "spikingjelly": ("spikingjelly", "nirtorch"),
}


def peer_param(peer: str):
    return pytest.param(peer, marks=needs(*PEERS[peer]))


@pytest.mark.parametrize("peer", [peer_param("sinabs"), peer_param("spikingjelly")])
def test_a_peer_reads_hwsim_s_export_and_spikes_as_hwsim(peer, tmp_path):
    """A converted zoo network (VGG11, random weights, no biases), exported for the peer: the
    peer's module, with docs/nir.md's settings, spikes as hwsim's engine does, shifted by
    hwsim's one step per population."""
    from test_nir import converted  # noqa: PLC0415 (tests/ is on pytest's path)

    snn = converted("vgg11", ()).with_heads((FC_HEAD,))
    assert all(float(w.bias.abs().max()) == 0 for w in snn.weights.values())
    graph = nir.read(write_nir(snn, tmp_path / "v.nir", peer))
    n, steps = 4, 60
    x = make_synthetic(n, seed=0, split="test").x
    module = load_peer(peer, graph, n)
    assert_weights_read(module, graph)
    theirs = run_peer(peer, module, x, steps)
    depth = max(p.depth for p in snn.graph.populations())
    ours = simulate(snn, x, steps + depth + 1).head_spikes[FC_HEAD][:, depth + 1 :]
    assert ours.sum() > 0
    np.testing.assert_array_equal(ours, theirs)


@pytest.fixture(scope="module")
def vgg19():
    """The default model (models/vgg19.pt), converted, and 4 of its test images."""
    from pathlib import Path

    from hwsim.model.convert import ConversionParams
    from hwsim.pipeline.session import Session

    session = Session.open(
        Path(__file__).parents[1] / "models" / "vgg19.pt", None, ConversionParams(), None
    )
    return session.snn, session.images("test", 4).x


@pytest.mark.slow
@pytest.mark.parametrize("peer", [peer_param("sinabs"), peer_param("spikingjelly")])
def test_every_peer_loads_hwsim_s_export_of_the_default_model(peer, vgg19, tmp_path):
    """The export of models/vgg19.pt with all its heads loads in sinabs (it ended in KeyError
    'fc_gap': dotted node names, and AvgPool2d, which it does not read) with every weight as
    written; spikingjelly builds its module with nirtorch's nir_to_torch, which loops forever on
    a graph with several Outputs, so it gets the FC alone (`--ic none`). snntorch and norse
    cannot step hwsim's IF neurons: the export for them is refused
    (tests/test_nir.py::test_hwsim_s_if_neurons_are_refused_for_a_peer_that_cannot_step_them)."""
    snn, _ = vgg19
    if peer == "spikingjelly":
        snn = snn.with_heads((FC_HEAD,))
    graph = nir.read(write_nir(snn, tmp_path / "vgg19.nir", peer))
    assert graph.metadata["fc_output"] == "fc"
    assert_weights_read(load_peer(peer, graph, 4), graph)


class Delays:
    """hwsim's one step per population, added to a peer's module: each spiking module's
    output reaches the next layer one step later (forward hooks); `counts[name]` (T,) records
    its spikes per step, summed over the images."""

    def __init__(self, module, peer: str, n: int, steps: int):
        self.counts: dict[str, list[float]] = {}
        self.last: dict[str, torch.Tensor] = {}
        for name, m in module.named_modules():
            if peer == "sinabs" and type(m).__name__ == "IAFSqueeze":
                m.register_forward_hook(self.squeezed(name, n, steps))
            elif peer == "spikingjelly" and type(m).__name__ == "_NIRStatefulModule":
                m.register_forward_hook(self.stepped(name))

    def squeezed(self, name: str, n: int, steps: int):
        def hook(_m, _i, out):
            o = out.reshape(n, steps, *out.shape[1:])
            self.counts[name] = o.reshape(n, steps, -1).sum((0, 2)).tolist()
            return torch.cat([torch.zeros_like(o[:, :1]), o[:, :-1]], 1).reshape(out.shape)

        return hook

    def stepped(self, name: str):
        def hook(_m, _i, out):
            spikes, state = out
            self.counts.setdefault(name, []).append(float(spikes.sum()))
            previous = self.last.get(name, torch.zeros_like(spikes))
            self.last[name] = spikes
            return previous, state

        return hook


@pytest.mark.slow
@pytest.mark.parametrize("peer", [peer_param("sinabs"), peer_param("spikingjelly")])
def test_the_default_model_spikes_as_hwsim_in_a_peer_with_hwsim_s_delays(peer, vgg19, tmp_path):
    """models/vgg19.pt (BN-folded biases) exported for the peer: with a one-step delay after
    every population added to the peer's module (hwsim's pipeline; NIR has no such delay, and
    a bias integrates during it), the peer's FC spikes and every population's spikes per step
    equal hwsim's engine's, on 4 test images for 30 steps. Without the delays the biases make
    them differ (docs/nir.md measures by how much)."""
    snn, x = vgg19
    snn = snn.with_heads((FC_HEAD,))
    steps = 30
    graph = nir.read(write_nir(snn, tmp_path / "vgg19.nir", peer))
    module = load_peer(peer, graph, len(x))
    delays = Delays(module, peer, len(x), steps)
    theirs = run_peer(peer, module, x, steps)
    ours = simulate(snn, x, steps)
    assert ours.head_spikes[FC_HEAD].sum() > 0
    np.testing.assert_array_equal(ours.head_spikes[FC_HEAD], theirs)
    populations = 0
    for i, layer in enumerate(ours.layer_names):
        node = snn.graph.layer(layer).population.replace(".", "_")
        node = node if node in delays.counts else f"{node}_if"
        np.testing.assert_array_equal(ours.layer_spikes[:, i], delays.counts[node], err_msg=node)
        populations += 1
    assert populations == len(snn.graph.populations())


@needs("snntorch", "nirtorch")
def test_hwsim_run_on_a_snntorch_leaky_network_with_an_added_ic_charges_the_leak(tmp_path):
    """`hwsim run` on snntorch's export with an IC added on its first Leaky population (a LIF
    tap) reports the energy, with the leak's multiplies of every leaky neuron per step in the
    `leak` column: conv0's 4 x 16 x 16 neurons x 1.1 pJ (spikesim.yaml)."""
    import csv

    from snntorch.export_nir import export_to_nir

    from hwsim.cli.main import main

    graph = export_to_nir(snntorch_net(True), torch.rand(1, 1, 16, 16), ignore_dims=[0])
    w_ic = np.round(np.random.default_rng(5).normal(0, 0.5, (10, 4)) * 32) / 32
    graph = add_ic_head(graph, "1", w_ic, map_shape=(4, 16, 16), name="ic")
    nir.write(tmp_path / "lif.nir", graph)
    code = main([
        "run", "--model", str(tmp_path / "lif.nir"), "--dataset", "synthetic", "--convention",
        "snntorch", "--tune-on", "train", "--tune-images", "4", "--timesteps", "8", "--images",
        "4", "--traces", str(tmp_path / "traces"), "--out", str(tmp_path / "run"),
    ])  # fmt: skip
    assert code == 0
    with open(tmp_path / "run" / "energy_breakdown.csv") as f:
        rows = {r["layer"]: r for r in csv.DictReader(f)}
    assert float(rows["0"]["leak_pj"]) == pytest.approx(4 * 16 * 16 * 1.1)
    assert float(rows["ic_affine"]["leak_pj"]) == 0  # the added IC head's IF neurons


# --------------------------------------------------------------------------- leaky neurons and
# pooling layers exported (issue 25): a small network built in hwsim


def tiny_network(neurons: dict, *, ic: bool, dyadic: bool, seed: int = 0):
    """An hwsim network built as a layer graph: conv0 (1 -> 4, 3x3) -> pool1 (2x2 average,
    a `Pool.AVG` layer) -> pool2 (2x2 max, `Pool.MAX`) -> conv3 (4 -> 8, 3x3) -> the FC head
    (GAP, Linear 8 -> 10), and with `ic` an IC on pool1 (GAP, Linear 4 -> 10); no biases.
    `neurons`: population -> `Neuron` (default hwsim's IF; pool2: the max pooling's). Weights
    of numpy seed `seed`; dyadic: k / 64."""
    from hwsim.model.convert import ConversionParams, SpikingNetwork, Weights
    from hwsim.model.graph import IF_NEURON, Layer, LayerGraph, LayerKind, Pool, Role
    from hwsim.model.nir_io import ImportedSpec
    from hwsim.model.nir_pool import MAX_NEURON

    rng = np.random.default_rng(seed)

    def drawn(shape, sd: float) -> np.ndarray:
        w = rng.normal(0, sd, shape)
        return (np.round(w * 64) / 64 if dyadic else w).astype(np.float32)

    def layer(name, kind, shapes, geometry, inputs, role=Role.BACKBONE, head=None, **kw):
        pool = kw.get("pool")
        default = MAX_NEURON if pool is Pool.MAX else IF_NEURON
        return Layer(name, kind, role, *shapes, *geometry, inputs, name, head=head,
                     neuron=neurons.get(name, default), **kw)  # fmt: skip

    conv, gap, linear = LayerKind.CONV, LayerKind.GAP, LayerKind.LINEAR
    layers = [
        layer("conv0", conv, ((1, 16, 16), (4, 16, 16)), ((3, 3), 1, 1), (), block=0),
        layer("pool1", conv, ((4, 16, 16), (4, 8, 8)), ((2, 2), 2, 0), ("conv0",), block=1,
              pool=Pool.AVG),
        layer("pool2", conv, ((4, 8, 8), (4, 4, 4)), ((2, 2), 2, 0), ("pool1",), block=2,
              pool=Pool.MAX),
        layer("conv3", conv, ((4, 4, 4), (8, 4, 4)), ((3, 3), 1, 1), ("pool2",), block=3),
    ]  # fmt: skip
    heads = [("fc", FC_HEAD, "conv3", 8, 4, Role.FC_HEAD)]
    if ic:
        heads.insert(0, ("ic", 1, "pool1", 4, 8, Role.IC_HEAD))
    for tag, head, tap, c, hw, role in heads:
        layers += [
            layer(f"{tag}.gap", gap, ((c, hw, hw), (c, 1, 1)), ((hw, hw), 1, 0), (tap,), role,
                  head),
            layer(f"{tag}.linear", linear, ((c, 1, 1), (10, 1, 1)), ((1, 1), 1, 0),
                  (f"{tag}.gap",), role, head),
        ]  # fmt: skip
    graph = LayerGraph(tuple(layers), (1, 16, 16), 10)
    window = np.ones((1, 1, 2, 2), np.float32)
    eye = np.eye(4, dtype=np.float32)[:, :, None, None] * window
    weights = {"conv0": drawn((4, 1, 3, 3), 1.0), "pool1": eye / 4, "pool2": eye,
               "conv3": drawn((8, 4, 3, 3), 0.8), "fc.linear": drawn((10, 8), 2.0)}  # fmt: skip
    if ic:
        weights["ic.linear"] = drawn((10, 4), 2.0)
    wts = {k: Weights(torch.from_numpy(w), torch.zeros(len(w))) for k, w in weights.items()}
    outputs = ((1, "ic1"), (FC_HEAD, "fc")) if ic else ((FC_HEAD, "fc"),)
    spec = ImportedSpec("tiny", (1, 16, 16), 10, graph, outputs)
    return SpikingNetwork(spec, graph, wts, ConversionParams(threshold=1.0), ())


def peer_neurons(peer: str) -> dict:
    """Leaky and reset-to populations each target's importer steps as hwsim does
    (hwsim.model.nir_targets): hwsim's own reader takes any; sinabs a LIF of float32 leak
    exp(-1 / tau), gain 1, subtracting or resetting to 0; snntorch only Leaky(reset "zero"),
    V > theta, everywhere (its IF is leaky); norse V > theta and a reset to 0 (LIF: gain
    1 - leak, starting at v_leak); spikingjelly V >= theta, hard resets (LIF: v_leak =
    v_reset)."""
    from hwsim.model.graph import Neuron

    def sinabs_leak(tau: float) -> float:
        return float(torch.exp(-1.0 / torch.tensor(tau, dtype=torch.float32)))

    if peer == "hwsim":
        return {
            "conv0": Neuron(leak=0.75, gain=0.5, v_leak=0.25, reset_to=-0.25, strict=True),
            "pool1": Neuron(leak=0.875, reset_to=0.0, v_init=0.0),
            "conv3": Neuron(leak=0.5, strict=True, delayed_reset=True),
            "fc.linear": Neuron(leak=0.75, gain=0.25, reset_to=0.5, v_init=0.5),
        }
    if peer == "sinabs":
        return {
            "conv0": Neuron(leak=sinabs_leak(4.0)),
            "conv3": Neuron(leak=sinabs_leak(2.0), reset_to=0.0, v_init=0.0),
        }
    if peer == "snntorch":
        leaks = {
            "conv0": 0.875,
            "pool1": 0.5,
            "conv3": 0.9375,
            "fc.gap": 0.875,
            "fc.linear": 0.9375,
        }
        return {k: Neuron(leak=v, strict=True, reset_to=0.0, v_init=0.0) for k, v in leaks.items()}
    if peer == "norse":
        zero = {"strict": True, "reset_to": 0.0, "v_init": 0.0}
        out = {k: Neuron(**zero) for k in ("pool1", "ic.gap", "ic.linear", "fc.gap", "fc.linear")}
        out["conv0"] = Neuron(leak=0.75, gain=0.25, v_leak=0.5, strict=True, reset_to=0.0,
                              v_init=0.5)  # fmt: skip
        out["conv3"] = Neuron(leak=0.5, gain=0.5, **zero)
        return out
    return {
        "conv0": Neuron(leak=0.75, gain=0.25, v_leak=-0.25, reset_to=-0.25, v_init=-0.25),
        "pool1": Neuron(reset_to=0.125, v_init=0.125),
        "conv3": Neuron(leak=0.5),
    }


def peer_heads(peer: str, module, graph, x: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """Every Output's spikes (N, T, C) of the peer's module over `steps` steps, by Output node
    (read from nirtorch's executor cache: with several Outputs it returns one)."""
    if len([n for n in graph.nodes.values() if type(n).__name__ == "Output"]) == 1:
        return {"fc": run_peer(peer, module, x, steps)}
    heads = {o: [p for p, q in graph.edges if q == o][0] for o in ("fc", "ic1")}
    xt = torch.from_numpy(x)
    with torch.no_grad():
        if peer == "sinabs":
            _, state = module(xt[:, None].repeat(1, steps, 1, 1, 1).flatten(0, 1))
            return {o: state.cache[n].reshape(len(x), steps, -1).numpy() for o, n in heads.items()}
        rows: dict[str, list] = {o: [] for o in heads}
        for image in xt:  # norse
            state, outs = None, {o: [] for o in heads}
            for _ in range(steps):
                _, state = module(image, state)
                for o, n in heads.items():
                    outs[o].append(state.cache[n].reshape(-1))
            for o in heads:
                rows[o].append(torch.stack(outs[o]))
        return {o: torch.stack(r).numpy() for o, r in rows.items()}


def hwsim_heads(snn, x: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """hwsim's spikes per head (Output name) over a peer's `steps` steps without delays: each
    head shifted by its population's depth + 1."""
    depth = {p.name: p.depth for p in snn.graph.populations()}
    run = simulate(snn, x, steps + max(depth.values()) + 1).head_spikes
    out = {}
    for h, name in snn.spec.outputs:
        shift = depth[snn.graph.head_output(h).population] + 1
        out[name] = run[h][:, shift : shift + steps]
    return out


FLOAT_BOUND = {"sinabs": 0, "snntorch": 0, "norse": 0, "spikingjelly": 0}
"""Most (image, step, class) entries of the float-weight comparison that may differ per peer
(measured: docs/nir.md)."""


@pytest.mark.parametrize("peer", [peer_param(p) for p in PEERS])
@pytest.mark.parametrize("dyadic", [True, False])
def test_a_peer_runs_hwsim_s_export_of_leaky_neurons_and_poolings(peer, dyadic, tmp_path):
    """`tiny_network` with the leaky and reset-to populations the peer's importer can step
    (`peer_neurons`), an average pooling and a max pooling, exported for the peer: the peer's
    own importer (with docs/nir.md's settings) builds a module whose heads spike as hwsim's
    engine does (shifted by hwsim's one step per population). sinabs and norse get the IC
    too (snntorch's and spikingjelly's nirtorch loops on several Outputs). The file writes
    the average as the pooling node the peer reads and the max pooling as that node into IF
    neurons (snntorch: LIF) resetting to 0 at a threshold in the window's OR range. hwsim
    reads the file back with the same pooling layers, neurons and spikes (a sum into neurons
    at 4 theta, as written for sinabs and norse, is the 2x2 average). Dyadic weights:
    identical; float weights: at most `FLOAT_BOUND` differing entries."""
    ic = peer in ("sinabs", "norse")
    snn = tiny_network(peer_neurons(peer), ic=ic, dyadic=dyadic)
    path = write_nir(snn, tmp_path / "t.nir", peer)
    graph = nir.read(path, type_check=False)  # sinabs' LIF values: one per node
    pool = PRESETS[peer].pooling
    written = {"AvgPool2d": PoolKind.AVG, "SumPool2d": PoolKind.SUM}
    assert written[type(graph.nodes["pool1"]).__name__] is pool
    assert written[type(graph.nodes["pool2"]).__name__] is pool
    assert float(np.ravel(graph.nodes["pool2_if"].v_reset)[0]) == 0
    n, steps = 4, 40
    x = make_synthetic(n, seed=0, split="test").x
    if dyadic:
        x = (np.round(x * 64) / 64).astype(np.float32)
    module = load_peer(peer, graph, n)
    assert_weights_read(module, graph)
    theirs = peer_heads(peer, module, graph, x, steps)
    ours = hwsim_heads(snn, x, steps)
    assert set(theirs) == set(ours) == ({"fc", "ic1"} if ic else {"fc"})
    back = read_nir(path)  # hwsim's reader: the recorded steps, the pooling named by weight
    assert [(la.pool, la.neuron) for la in back.graph.layers] == [
        (la.pool, la.neuron) for la in snn.graph.layers
    ]
    for head, spikes in hwsim_heads(back, x, steps).items():
        np.testing.assert_array_equal(spikes, ours[head])
    for head, spikes in ours.items():
        differ = int((spikes != theirs[head]).sum())
        print(f"{peer} dyadic={dyadic} {head}: {differ} of {spikes.size} entries differ,"
              f" {int(spikes.sum())} vs {int(theirs[head].sum())} spikes")  # fmt: skip
        assert spikes.sum() > 20
        assert differ <= (0 if dyadic else FLOAT_BOUND[peer])


def test_hwsim_s_own_export_of_leaky_neurons_and_poolings_reads_back_exactly(tmp_path):
    """For hwsim's reader the file carries every population's step NIR cannot say (a reset to
    0, V > theta, the delayed reset, the start: `metadata["neurons"]`): read back, the layers,
    their pooling operations and neurons are the same and every head spikes alike, on float
    weights too. The max pooling is written SumPool2d -> IF(r = 1, v_threshold 1, v_reset 0)
    and read back as `Pool.MAX` by its rule."""
    from hwsim.model.graph import Pool

    snn = tiny_network(peer_neurons("hwsim"), ic=True, dyadic=False)
    graph = nir.read(write_nir(snn, tmp_path / "t.nir"))
    assert type(graph.nodes["pool2"]).__name__ == "SumPool2d"
    node = graph.nodes["pool2_if"]
    assert (float(node.v_threshold.flat[0]), float(node.v_reset.flat[0])) == (1.0, 0.0)
    assert type(graph.nodes["conv0_if"]).__name__ == "LIF"
    back = read_nir(tmp_path / "t.nir")
    assert [(la.name, la.pool, la.neuron) for la in back.graph.layers] == [
        (la.name, la.pool, la.neuron) for la in snn.graph.layers
    ]
    assert back.graph.layer("pool2").pool is Pool.MAX
    x = make_synthetic(4, seed=0, split="test").x
    a, b = simulate(snn, x, 40), simulate(back, x, 40)
    for h in snn.graph.heads:
        assert a.head_spikes[h].sum() > 20
        np.testing.assert_array_equal(a.head_spikes[h], b.head_spikes[h])


@pytest.mark.parametrize(
    "peer,population,neuron,says",
    [
        ("snntorch", "conv0", {"leak": 0.5, "strict": True}, "reset_mechanism='zero'"),
        ("snntorch", "conv0", {"reset_to": 0.0, "v_init": 0.0}, "an IF node as a leaky"),
        ("norse", "conv0", {"leak": 0.5, "strict": True, "reset_to": 0.0}, "gain dt / tau"),
        ("norse", "conv0", {"strict": True, "reset_to": 0.25}, "resets a spiking neuron to 0"),
        ("sinabs", "conv3", {"reset_to": 0.5}, "adds reset_value to every neuron"),
        ("sinabs", "conv0", {"leak": 0.5, "gain": 0.5}, "input gain 1"),
        ("spikingjelly", "conv0", {"leak": 0.5, "strict": True}, "fires at V >= theta"),
        ("spikingjelly", "conv0", {"leak": 0.5, "v_leak": 0.5}, "decays to v_reset"),
        ("hwsim", "conv0", {"gain": 0.5}, "without an input gain"),
    ],
)
def test_a_step_the_target_s_importer_cannot_say_is_refused_naming_the_population(
    peer, population, neuron, says, tmp_path
):
    """Each refusal names the population, its step, the target and what its importer does."""
    from hwsim.model.graph import Neuron

    snn = tiny_network({population: Neuron(**neuron)}, ic=False, dyadic=True)
    with pytest.raises(NirError, match=f"population '{population}' steps .*{peer}'s NIR importer"):
        write_nir(snn, tmp_path / "t.nir", peer)
    with pytest.raises(NirError, match=re.escape(says)):
        write_nir(snn, tmp_path / "t.nir", peer)


def test_hwsim_run_on_an_exported_leaky_pooled_network_reports_the_pooling_unit(tmp_path):
    """`hwsim run` on hwsim's own export of a network with a leaky conv0, an average and a max
    pooling layer and an IC: the pooling layers are charged on the tile's pooling unit
    (`pooling_pj`, nothing on crossbars or ADCs), conv0's leaky neurons their leak multiplies,
    and the cycle-level simulation and the five methods' curves are reported."""
    import csv

    from hwsim.cli.main import main
    from hwsim.model.graph import Neuron

    snn = tiny_network({"conv0": Neuron(leak=0.75)}, ic=True, dyadic=True)
    path = write_nir(snn, tmp_path / "pooled.nir", "hwsim")
    code = main([
        "run", "--model", str(path), "--dataset", "synthetic", "--tune-on", "train",
        "--tune-images", "4", "--timesteps", "8", "--images", "4", "--timing", "cycle",
        "--traces", str(tmp_path / "traces"), "--out", str(tmp_path / "run"),
    ])  # fmt: skip
    assert code == 0
    with open(tmp_path / "run" / "energy_breakdown.csv") as f:
        rows = {r["layer"]: r for r in csv.DictReader(f)}
    pools = [name for name in rows if "pool" in name]
    assert len(pools) == 2, rows.keys()
    for name in pools:
        assert float(rows[name]["pooling_pj"]) > 0
        assert float(rows[name]["crossbar_pj"]) == float(rows[name]["adc_pj"]) == 0
    conv0 = next(r for name, r in rows.items() if name.startswith("conv0"))
    assert float(conv0["leak_pj"]) == pytest.approx(4 * 16 * 16 * 1.1)
    assert float(conv0["pooling_pj"]) == 0
    with open(tmp_path / "run" / "cycle_methods.csv") as f:
        methods = {r["method"] for r in csv.DictReader(f)}
    assert methods == {"DL", "SL", "BSF-Grid", "BSF-Emp", "Early-Exit"}
