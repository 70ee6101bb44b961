"""The energy profile of a network on a chip (`hwsim.profile`, docs/profile.md).

A model (a NIR graph or file, a peer's torch module exported to NIR on the fly, an hwsim
checkpoint or converted model, or an open `Session`) is simulated by the engine on the given
images (`hwsim.pipeline.cache.trace`, as `run` simulates its test images), and the chip that
holds it, every classifier head included, is charged as `run` charges a method
(`hwsim.pipeline.costs.chip_activity`, `hwsim.hw.energy.run_energy`,
`hwsim.hw.timing.run_timing`, `hwsim.hw.area.chip_area`). Nothing is stored on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from hwsim.engine.trace import Trace
from hwsim.errors import InputError, ModelError
from hwsim.fusion import argmax_credit
from hwsim.hw.arch import Architecture, EnergyModel, load_arch
from hwsim.hw.area import chip_area
from hwsim.hw.energy import run_energy
from hwsim.hw.mapping import map_network
from hwsim.hw.noc import producer_traffic
from hwsim.hw.timing import run_timing
from hwsim.methods import Ties
from hwsim.model.coding import InputCoding
from hwsim.model.conversion import ConversionParams
from hwsim.model.data import (
    DATASETS,
    ImageSet,
    dataset_input_shape,
    dataset_num_classes,
)
from hwsim.model.graph import FC_HEAD
from hwsim.model.nir_io import ImportedSpec, NirOptions, import_graph, is_nir_path, read_nir
from hwsim.model.nir_nodes import nir_module
from hwsim.model.packaged import arch_names, resolve_arch, resolve_model
from hwsim.pipeline import cache
from hwsim.pipeline.activity import activity_spec
from hwsim.pipeline.config import ICChoice, ProgressFn, SimConfig, WarnFn
from hwsim.pipeline.costs import chip_activity
from hwsim.pipeline.session import NirSource, Session
from hwsim.results import ProfileResult

if TYPE_CHECKING:  # torch is imported by what gives tensors or torch modules, never here
    import torch

    from hwsim.model.convert import SpikingNetwork


@dataclass(frozen=True)
class PeerExporter:
    """A peer's NIR exporter: `module.function(net, sample, **kwargs)` on one input image, and
    the convention (`hwsim.model.nir_convention.PRESETS`) its neurons follow."""

    module: str
    function: str
    convention: str
    kwargs: tuple[tuple[str, Any], ...] = ()


PEERS: dict[str, PeerExporter] = {
    "sinabs": PeerExporter("sinabs", "to_nir", "sinabs"),
    # the sample's batch dimension is not part of a NIR shape
    "snntorch": PeerExporter(
        "snntorch.export_nir", "export_to_nir", "snntorch", (("ignore_dims", [0]),)
    ),
}
"""Peers whose torch modules are exported to NIR on the fly, by package."""

Images: TypeAlias = "int | np.ndarray | torch.Tensor"


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    return torch is not None and isinstance(value, torch.Tensor)


def _is_module(value: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch module exists only once torch is imported
    return torch is not None and isinstance(value, torch.nn.Module)


def architecture(arch: str | Path | Architecture) -> Architecture:
    """An architecture object as given, else the YAML file at `arch` or the packaged
    architecture of that name (`spikesim`, ...)."""
    if isinstance(arch, Architecture):
        return arch
    path = resolve_arch(arch)
    if not path.is_file():
        raise InputError(
            f"{{arch}} {arch}: no such architecture file nor packaged architecture"
            f" (packaged: {', '.join(arch_names())})",
            params=("arch",),
        )
    return load_arch(path)


def image_array(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Images given as an array or tensor, as float32 (N, C, H, W)."""
    if _is_tensor(images):
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] < 1 or x.dtype.kind not in "fiub":
        raise InputError(
            f"{{images}}: expected a count or real images (N, C, H, W) with N >= 1, got"
            f" {x.dtype} {x.shape}",
            params=("images",),
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def peer_of(module: torch.nn.Module) -> str:
    """The peer package (a key of PEERS) whose layers `module` holds."""
    found = {type(m).__module__.split(".")[0] for m in module.modules()} & set(PEERS)
    if len(found) != 1:
        raise InputError(
            f"{{model}} {type(module).__name__}: a torch module is exported to NIR by the peer"
            f" whose neurons it holds ({' or '.join(PEERS)}); found"
            f" {', '.join(sorted(found)) or 'none'}. Export it to NIR yourself and pass the"
            " graph",
            params=("model",),
        )
    return found.pop()


def export_module(module: torch.nn.Module, input_shape: tuple[int, ...]) -> tuple[Any, str]:
    """A peer's module exported to NIR by the peer's own exporter (PEERS), on one zero image,
    and the peer's convention."""
    import torch

    peer = PEERS[peer_of(module)]
    sample = torch.zeros((1, *input_shape))
    export = getattr(importlib.import_module(peer.module), peer.function)
    try:
        graph = export(module, sample, **dict(peer.kwargs))
        graph.infer_types()  # the node shapes hwsim reads (it checks each one itself)
    except Exception as e:  # a peer's exporter raises what it raises
        raise ModelError(
            f"{{model}} {type(module).__name__}: {peer.module}.{peer.function} could not export"
            f" it to NIR ({type(e).__name__}: {e}); export it yourself and pass the graph",
            params=("model",),
        ) from e
    return graph, peer.convention


def _digest(snn: SpikingNetwork) -> str:
    """A content key for a network that has no file (the trace key's model hash)."""
    return hashlib.sha256(snn.fingerprint().encode()).hexdigest()


def _shape_of(images: Images, dataset: str | None) -> tuple[int, int, int] | None:
    """The input shape the images or the dataset give (None: neither)."""
    if dataset is not None:
        if dataset not in DATASETS:
            raise InputError(
                f"{{dataset}} {dataset!r}: expected one of {', '.join(DATASETS)}",
                params=("dataset",),
            )
        return dataset_input_shape(dataset)
    if isinstance(images, int):
        return None
    c, h, w = image_array(images).shape[1:]
    return int(c), int(h), int(w)


def open_model(
    model: Any,
    images: Images,
    *,
    dataset: str | None,
    data_root: str | None,
    conversion: ConversionParams,
    nir: NirOptions,
) -> tuple[Session, str]:
    """A session of `model` and its name in the report. A NIR graph, file or peer module runs
    on `dataset`'s images (if given) and is checked against its shape and classes."""
    if isinstance(model, Session):
        return model, str(model.model_path)
    if isinstance(model, str | Path) and not is_nir_path(model):
        if dataset is not None or nir != NirOptions():
            raise InputError(
                f"{model}: {{dataset}} and {{nir}} apply to NIR models; a checkpoint brings its"
                " own dataset and classifier heads",
                params=("dataset", "nir"),
            )
        path = resolve_model(model)  # a packaged model by name, as --model vgg19
        return Session.open(path, data_root, conversion), str(path)
    shape = _shape_of(images, dataset)
    classes = None if dataset is None else dataset_num_classes(dataset)
    kw = {"input_shape": shape, "num_classes": classes, "v0": conversion.v0}
    if isinstance(model, str | Path):
        path = Path(model)
        snn = read_nir(path, nir, **kw)
        name, sha = str(path), None
    else:
        if _is_module(model):
            if shape is None:
                raise InputError(
                    "{dataset}: a torch module is exported on one image of the dataset's shape;"
                    " name the dataset or give the images",
                    params=("dataset",),
                )
            graph, peer = export_module(model, shape)
            name, nir = (
                type(model).__name__,
                dataclasses.replace(nir, convention=nir.convention or peer),
            )
        elif isinstance(model, nir_module().NIRGraph):
            graph, name = model, "NIR graph"
        else:
            raise InputError(
                f"{{model}}: expected a NIR graph, a .nir file, a checkpoint, a Session or a"
                f" {' or '.join(PEERS)} torch module; got {type(model).__name__}",
                params=("model",),
            )
        snn = import_graph(graph, name="graph", fc_output=nir.fc_output,
                           convention=nir.convention, **kw)  # fmt: skip
        path, sha = Path(name), _digest(snn)
    source = NirSource(path, snn, dataset or "", data_root)
    return Session(source, conversion, _sha=sha), name


def image_set(
    session: Session, images: Images, labels: np.ndarray | torch.Tensor | None, dataset: str | None
) -> tuple[ImageSet, bool]:
    """The images to run and whether their labels are known: the first `images` test images of
    the model's dataset, or the given array (labels `labels`, if given)."""
    spec = session.spec
    if isinstance(images, bool) or not (isinstance(images, int | np.ndarray) or _is_tensor(images)):
        raise InputError(
            f"{{images}}: expected a count or an array (N, C, H, W); got {type(images).__name__}",
            params=("images",),
        )
    if isinstance(images, int):
        if labels is not None:
            raise InputError(
                "{labels}: the dataset's test images bring their labels; give labels with an"
                " array of images",
                params=("labels",),
            )
        if isinstance(session.source, NirSource) and not dataset:
            raise InputError(
                f"{{images}} {images}: a NIR model carries no images; name the {{dataset}} they"
                " come from, or give the images as an array",
                params=("images", "dataset"),
            )
        return session.images("test", images), True
    x = image_array(images)
    if x.shape[1:] != tuple(spec.input_shape):
        raise InputError(
            f"{{images}}: images of shape {x.shape[1:]}; the network reads"
            f" {tuple(spec.input_shape)} (C, H, W)",
            params=("images",),
        )
    n = len(x)
    y = np.zeros(n, np.int64)
    if labels is not None:
        if _is_tensor(labels):
            labels = labels.detach().cpu().numpy()
        y = np.asarray(labels)
        if (
            y.shape != (n,)
            or y.dtype.kind not in "iu"
            or n
            and not 0 <= y.min() <= y.max() < (spec.num_classes)
        ):
            raise InputError(
                f"{{labels}}: expected ({n},) integers in 0..{spec.num_classes - 1}, got"
                f" {y.dtype} {y.shape}",
                params=("labels",),
            )
        y = y.astype(np.int64)
    name = dataset or "images"
    return ImageSet(x, y, name, "given", spec.num_classes, np.arange(n, dtype=np.int64)), (
        labels is not None
    )


def head_accuracy(test: Trace, ties: Ties) -> dict[int, float]:
    """Per head, the fraction of images its spike counts over all T steps classify right (a
    tie credited under `ties`, as every method's curve is)."""
    ids = np.asarray(test.image_indices)
    out = {}
    for head, spikes in test.sim.head_spikes.items():
        counts = spikes.sum(axis=1, dtype=np.int64)[:, None, :]
        out[head] = float(
            argmax_credit(counts, test.labels, ties, ids)[:, 0].mean(dtype=np.float64)
        )
    return out


def profile_model(
    model: Any,
    images: Images = 100,
    *,
    arch: str | Path | Architecture = "spikesim",
    timesteps: int = 100,
    labels: np.ndarray | torch.Tensor | None = None,
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
) -> ProfileResult:
    """Simulate `model` on `images` for `timesteps` steps and charge the chip `arch` that holds
    it (backbone, the IC heads `ics` (None or "all": all of them) and the FC): per-image energy
    by layer and component (pJ), latency (cycles, ns; the analytic model), area (mm^2), spike
    rates and, with labels, every head's accuracy at T (docs/profile.md)."""
    start = time.perf_counter()
    chip_arch = architecture(arch)
    sim = SimConfig(timesteps=timesteps, batch_size=batch_size, threads=threads,
                    **({} if coding is None else {"coding": coding}))  # fmt: skip
    conversion = conversion or ConversionParams()
    if nir is not None and nir.dataset is not None:
        raise InputError(
            "{nir}: give the dataset as profile's own {dataset}", params=("nir", "dataset")
        )
    session, name = open_model(
        model, images, dataset=dataset, data_root=data_root, conversion=conversion,
        nir=nir or NirOptions(),
    )  # fmt: skip
    heads = (*session.resolve_ics(ics, "ics"), FC_HEAD)
    data, labelled = image_set(session, images, labels, dataset)
    if chip_arch.energy_model is EnergyModel.EVENT:
        sim = dataclasses.replace(sim, activity=activity_spec(chip_arch))
    test = cache.trace(session, data, sim, trace_root=None, progress=progress, warn=warn,
                       stage="profile")  # fmt: skip
    chip = session.snn.graph.with_heads(heads)
    mapping = map_network(chip_arch, chip)
    activity = chip_activity(mapping, test)
    traffic = producer_traffic(mapping)
    sim_result = test.sim
    on_chip = {g.population for g in chip.layers}
    rates = {
        pop: float(rate)
        for pop, rate in zip(sim_result.layer_names, sim_result.spike_rates(), strict=True)
        if pop in on_chip
    }
    accuracy = None
    if labelled:
        accuracy = {h: a for h, a in head_accuracy(test, ties or Ties()).items() if h in heads}
    spec = session.spec
    if isinstance(spec, ImportedSpec):
        spec = spec.with_heads(heads)
    return ProfileResult(
        model=name,
        arch=chip_arch,
        spec=spec,
        images=len(data),
        timesteps=timesteps,
        energy=run_energy(mapping, activity, traffic=traffic),
        timing=run_timing(mapping, activity, traffic=traffic),
        area=chip_area(mapping),
        spike_rates=rates,
        accuracy=accuracy,
        seconds=time.perf_counter() - start,
    )
