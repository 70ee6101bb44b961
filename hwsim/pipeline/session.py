"""A model file and its converted SNN (`Session`), and the network a geometry command maps.

A session reads its network from a source of one of two kinds behind one small interface
(`ModelSource`): a checkpoint of `hwsim train` or a converted model (`CheckpointSource`: its own
dataset and splits, its ANN the reference the target accuracy is a fraction of), or a NIR file
(`NirSource`, docs/nir.md: spiking already, run on the images of the dataset it is given, its
own SNN at the final timestep the reference, as it has no ANN).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from hwsim.engine.trace import Trace, TraceError, TraceKey, file_sha256, indices_sha256
from hwsim.errors import InputError, ModelError
from hwsim.fusion import TuneSource, argmax_credit
from hwsim.methods import Ties
from hwsim.model.checkpoint import CheckpointInfo
from hwsim.model.conversion import ConversionError, ConversionParams, is_spiking_file
from hwsim.model.data import (
    DATASETS,
    ImageSet,
    dataset_input_shape,
    dataset_num_classes,
    load_dataset,
)
from hwsim.model.graph import FC_HEAD
from hwsim.model.netspec import NetSpec
from hwsim.model.nir_io import ImportedSpec, NirOptions, is_nir_path, read_nir
from hwsim.model.peek import checkpoint_info_of
from hwsim.pipeline.config import ALL_ICS, ICChoice, SimConfig
from hwsim.pipeline.model_cache import cached_correct, cached_fingerprint, cached_spiking, entry_key
from hwsim.results import Reference

if TYPE_CHECKING:  # torch is imported only where weights are read, converted or run: a run whose
    # traces are cached reads none
    from hwsim.hw.synapse import HardwareNetwork
    from hwsim.model.convert import SpikingNetwork
    from hwsim.model.nets import Checkpoint
    from hwsim.pipeline.hardware import FunctionalRun


class ModelSource(Protocol):
    """Where a session's network comes from: what differs between a checkpoint and a NIR file."""

    path: Path
    kind: ClassVar[str]  # the model file in messages: "checkpoint", "NIR model"
    reference: ClassVar[Reference]  # what the target accuracy is a fraction of

    @property
    def spec(self) -> NetSpec | ImportedSpec: ...

    @property
    def validation_images(self) -> int:
        """Training images held out as the validation split (0: none)."""
        ...

    def split(self, split: str) -> ImageSet:
        """The images of a split ("train", "validation", "test")."""
        ...

    def spiking(self, conversion: ConversionParams) -> SpikingNetwork:
        """The SNN: converted with `conversion`, or as the file gives it."""
        ...

    def reference_correct(self, test: Trace, ties: Ties) -> dict[int, np.ndarray]:
        """Per head, the reference's credit on each test image of `test` (1 right, 0 wrong; a
        tied SNN read-out under `ties`)."""
        ...

    def default_ic(self, target_fraction: float) -> int:
        """The IC a run evaluates when none is given."""
        ...

    def validation_missing(self) -> ModelError | None:
        """Why nothing can be tuned on validation images (None: there are some)."""
        ...


@dataclass(frozen=True)
class CheckpointSource:
    """A checkpoint (`hwsim train`), or a converted model (`converted`, its network as
    converted): its own dataset and splits, its ANN the reference. Its record (`info`: network,
    data, accuracies) is all a run whose traces are cached reads; its weights (`ckpt`, the
    checkpoint `loaded` if given) are read and checked when first needed."""

    path: Path
    info: CheckpointInfo
    data_root: str | None
    converted: SpikingNetwork | None = None
    loaded: Checkpoint | None = field(default=None, repr=False, compare=False)
    kind: ClassVar[str] = "checkpoint"
    reference: ClassVar[Reference] = Reference.ANN

    @cached_property
    def ckpt(self) -> Checkpoint:
        """The checkpoint with its weights (`nets.load_checkpoint`: read with torch, checked
        against the architecture)."""
        if self.loaded is not None:
            return self.loaded
        from hwsim.model.nets import load_checkpoint

        return load_checkpoint(self.path)

    @property
    def spec(self) -> NetSpec:
        return self.info.spec

    @property
    def validation_images(self) -> int:
        return self.info.validation_images

    def split(self, split: str) -> ImageSet:
        """The checkpoint's split, checked against the rows it recorded at training."""
        data = load_dataset(
            self.info.dataset["name"],
            split,
            self.data_root,
            seed=int(self.info.dataset.get("split_seed", 0)),
            validation=self.info.validation_images,
        )
        self.info.check_split(data, self.path)
        return data

    def spiking(self, conversion: ConversionParams) -> SpikingNetwork:
        from hwsim.model.convert import convert

        if self.converted is not None:
            return self.converted
        try:
            return convert(self.ckpt, self.split("train"), conversion)
        except ConversionError as e:
            raise ConversionError(f"{self.path}: {e.template}", params=e.params) from None

    def reference_correct(self, test: Trace, ties: Ties) -> dict[int, np.ndarray]:
        """The ANN's correctness on the test trace's images (float logits: `ties` unused)."""
        return ann_correct(self.ckpt, self.split(test.key.split), test.image_indices)

    def default_ic(self, target_fraction: float) -> int:
        return choose_ic(self.info, target_fraction)

    def validation_missing(self) -> ModelError | None:
        if self.validation_images:
            return None
        return ModelError(
            f"{self.path}: trained without a validation split, so nothing is left to tune on;"
            " retrain holding one out ({validation} N), or choose {tune_on} train (biased: the"
            " network has learnt those images) or {tune_on} cross-fit",
            params=("validation", "tune_on"),
        )


@dataclass(frozen=True)
class NirSource:
    """A network imported from a NIR file, run on the images of `dataset`; without an ANN, its
    own SNN at the final timestep is the reference."""

    path: Path
    snn: SpikingNetwork
    dataset: str
    data_root: str | None
    kind: ClassVar[str] = "NIR model"
    reference: ClassVar[Reference] = Reference.SNN_FINAL
    validation_images: ClassVar[int] = 0

    @property
    def spec(self) -> ImportedSpec:
        return self.snn.spec

    def split(self, split: str) -> ImageSet:
        return load_dataset(self.dataset, split, self.data_root)

    def spiking(self, conversion: ConversionParams) -> SpikingNetwork:
        return self.snn

    def reference_correct(self, test: Trace, ties: Ties) -> dict[int, np.ndarray]:
        """The SNN's own credit at the test trace's final timestep (spike counts over all T
        steps, a tie credited under `ties`, as every method's curve is)."""
        ids = np.asarray(test.image_indices)
        return {
            h: argmax_credit(s.sum(axis=1, dtype=np.int64)[:, None, :], test.labels, ties, ids)[
                :, 0
            ]
            for h, s in test.sim.head_spikes.items()
        }

    def default_ic(self, target_fraction: float) -> int:
        """Its one IC; without ANN accuracies to choose by, a network of several needs one
        named."""
        ics = self.spec.ic_positions
        if len(ics) != 1:
            raise InputError(
                f"{self.path}: {len(ics)} IC heads ({', '.join(map(str, ics)) or 'none'});"
                " name one with {ic} (an imported network has no ANN accuracies to choose by;"
                " a NIR file gives ICs as extra Output nodes)",
                params=("ic",),
            )
        return ics[0]

    def validation_missing(self) -> ModelError | None:
        return ModelError(
            f"{self.path}: an imported network has no validation split; tune with {{tune_on}}"
            " train (the {dataset} training images) or {tune_on} cross-fit",
            params=("tune_on", "dataset"),
        )


def open_source(
    model: Path, data_root: str | None, conversion: ConversionParams, nir: NirOptions
) -> ModelSource:
    """The source of a model file: a NIR file (`.nir`, run on the images of `nir.dataset`), a
    checkpoint, or a converted model (used as converted, so `conversion` must be the one it was
    made with)."""
    if is_nir_path(model):
        if nir.dataset is None:
            raise InputError(
                f"{model}: a NIR file carries no images; name the dataset it classifies with"
                f" {{dataset}} ({', '.join(DATASETS)})",
                params=("dataset",),
            )
        snn = read_nir(
            model,
            nir,
            input_shape=dataset_input_shape(nir.dataset),
            num_classes=dataset_num_classes(nir.dataset),
            v0=conversion.v0,
        )
        return NirSource(model, snn, nir.dataset, data_root)
    if nir != NirOptions():
        given = _nir_given(nir)
        raise InputError(
            f"{model}: {_listed(given)} {_verb(given)} only to NIR models (.nir); a checkpoint"
            " brings its own dataset, classifier heads and neurons",
            params=given,
        )
    info = checkpoint_info_of(model)
    if info is not None:  # a checkpoint: its weights are read when first needed
        return CheckpointSource(model, info, data_root)
    from hwsim.model.convert import spiking_from_payload
    from hwsim.model.nets import checkpoint_from_payload, read_model_file

    payload = read_model_file(model)  # refused here, naming why, if it is no model file
    if not is_spiking_file(payload):
        ckpt = checkpoint_from_payload(payload, model)
        return CheckpointSource(model, ckpt.info, data_root, loaded=ckpt)
    ckpt, snn = spiking_from_payload(payload, model)
    if snn.params != conversion:
        raise InputError(
            f"{model}: converted with {asdict(snn.params)}; this run asks for"
            f" {asdict(conversion)} (convert again, or pass the same {{v0}})",
            params=("v0",),
        )
    return CheckpointSource(model, ckpt.info, data_root, converted=snn, loaded=ckpt)


@dataclass
class Session:
    """A model file's network, its data and its SNN (converted once, lazily)."""

    source: ModelSource
    conversion: ConversionParams
    _snn: SpikingNetwork | None = field(default=None, repr=False)
    _sha: str | None = field(default=None, repr=False)
    _splits: dict[str, ImageSet] = field(default_factory=dict, repr=False)
    _hardware: tuple[str, HardwareNetwork] | None = field(default=None, repr=False)
    cache_root: Path | None = field(default=None, repr=False)
    """The trace root whose model cache keeps a checkpoint's conversion and its ANN's
    correctness (`hwsim.pipeline.model_cache`; None: computed every session)."""

    @classmethod
    def open(
        cls,
        model: Path,
        data_root: str | None,
        conversion: ConversionParams,
        nir: NirOptions | None = None,
    ) -> Session:
        """A session of a checkpoint, a converted model or a NIR file (`open_source`)."""
        return cls(open_source(Path(model), data_root, conversion, nir or NirOptions()), conversion)

    @property
    def model_path(self) -> Path:
        return self.source.path

    @property
    def spec(self) -> NetSpec | ImportedSpec:
        return self.source.spec

    @property
    def reference(self) -> Reference:
        return self.source.reference

    @property
    def validation_images(self) -> int:
        """Training images held out as the validation split (0: none)."""
        return self.source.validation_images

    def cache_under(self, root: Path | None) -> None:
        """Keep a checkpoint's conversion and its ANN's correctness in `root`'s model cache."""
        self.cache_root = None if root is None else Path(root)

    def _checkpoint(self) -> CheckpointSource | None:
        """The source, if a checkpoint to convert whose results the model cache may keep."""
        src = self.source
        ok = isinstance(src, CheckpointSource) and src.converted is None
        return src if ok and self.cache_root is not None else None

    @property
    def snn(self) -> SpikingNetwork:
        if self._snn is None:
            src = self._checkpoint()
            if src is None:
                self._snn = self.source.spiking(self.conversion)
            else:
                convert_it = partial(src.spiking, self.conversion)
                key = self._snn_key(src)
                self._snn = cached_spiking(self.cache_root, key, src.ckpt, convert_it)
        return self._snn

    def _snn_key(self, src: CheckpointSource) -> str:
        """The model cache's key of the checkpoint's conversion."""
        return entry_key(
            kind="snn",
            checkpoint=self.model_sha256,
            conversion=asdict(self.conversion),
            data_root=src.data_root,
        )

    def snn_fingerprint(self) -> str:
        """The SNN's fingerprint; that of a conversion the model cache keeps is read without
        loading it (a run whose traces are cached loads no weights: `cache.trace` keys a trace
        it simulates by the SNN it loaded)."""
        src = self._checkpoint()
        if self._snn is None and src is not None and self.cache_root is not None:
            stored = cached_fingerprint(self.cache_root, self._snn_key(src))
            if stored is not None:
                return stored
        return self.snn.fingerprint()

    @property
    def model_sha256(self) -> str:
        if self._sha is None:
            self._sha = file_sha256(self.model_path)
        return self._sha

    def split(self, split: str) -> ImageSet:
        """The images of a split (a checkpoint's own, checked against its record), read once
        per session."""
        if split not in self._splits:
            self._splits[split] = self.source.split(split)
        return self._splits[split]

    def images(self, split: str, n: int | None = None, param: str = "images") -> ImageSet:
        """The first `n` images of a split (None: all), or an error naming `param` and the
        split's size."""
        data = self.split(split)
        if n is None:
            return data
        if not 1 <= n <= len(data):
            raise InputError(
                f"{{{param}}} {n}: the {data.name} {data.split} split has {len(data)} images;"
                f" expected 1..{len(data)}",
                params=(param,),
            )
        return data.take(n)

    def calibration(self, images: int) -> np.ndarray:
        """The first `images` training images, which a calibrated ADC full scale is set on."""
        return self.split("train").x[:images]

    def hardware(self, run: FunctionalRun, timesteps: int) -> HardwareNetwork:
        """The SNN on `run`'s chip (`prepared_hardware`: built, and calibrated on the first
        training images when its ADC full scale is), kept for the next call with the same chip
        and timesteps (the last one only), so a run's tuning and test splits share it."""
        key = json.dumps([run.key(), timesteps], sort_keys=True, default=str)
        if self._hardware is None or self._hardware[0] != key:
            from hwsim.pipeline.hardware import prepared_hardware

            calibration = self.calibration(run.calibration_images)
            hw = prepared_hardware(self.snn, run.arch, run.config, calibration, timesteps)
            self._hardware = (key, hw)
        return self._hardware[1]

    def tuning_images(self, source: TuneSource, limit: int | None = None) -> ImageSet:
        """The images tuning reads (the first `limit` of them; None: all): the validation split,
        or training images when asked for explicitly."""
        if source is TuneSource.CROSS_FIT:
            raise InputError(
                "{tune_on} cross-fit tunes inside run and sweep, on the test images;"
                " tune on validation or train here",
                params=("tune_on",),
            )
        missing = self.source.validation_missing()
        if source is TuneSource.VALIDATION and missing is not None:
            raise missing
        data = self.split(str(source))
        if limit is not None and limit < 1:
            raise InputError(
                f"{{tune_images}} {limit}: expected at least 1 image", params=("tune_images",)
            )
        return data if limit is None else data.take(min(limit, len(data)))

    def check_ics(self, ics: tuple[int, ...], param: str = "ic") -> None:
        """Refuse IC positions the model has no head at, naming `param`."""
        have = self.spec.ic_positions
        missing = [i for i in ics if i not in have]
        if missing:
            listed = ", ".join(map(str, missing))
            raise InputError(
                f"{{{param}}} {listed}: the {self.source.kind} has ICs at"
                f" {', '.join(map(str, have)) or 'none'}"
                f" (no IC head at block{'s' if len(missing) > 1 else ''} {listed} of"
                f" {self.model_path})",
                params=(param,),
            )

    def resolve_ics(self, ics: ICChoice | None, param: str = "ic") -> tuple[int, ...]:
        """IC positions asked for (None or `ALL_ICS`: every IC of the model), checked."""
        if ics is None or ics == ALL_ICS:
            return tuple(self.spec.ic_positions)
        self.check_ics(tuple(ics), param)
        return tuple(ics)

    def reference_correct(self, test: Trace, ties: Ties) -> dict[int, np.ndarray]:
        """Per head, the credit of the reference that the target accuracy is a fraction of on
        each test image ((N,): 1 right, 0 wrong, a fraction for a tied SNN read-out)."""
        src = self._checkpoint()
        if src is None:
            return self.source.reference_correct(test, ties)
        key = entry_key(
            kind="ann",
            checkpoint=self.model_sha256,
            dataset=test.key.dataset,
            split=test.key.split,
            indices=test.key.image_indices_sha256,
            data_root=src.data_root,
        )
        return cached_correct(self.cache_root, key, partial(src.reference_correct, test, ties))

    def default_ic(self, target_fraction: float) -> int:
        """The IC `run` evaluates when none is given."""
        return self.source.default_ic(target_fraction)

    def key(self, data: ImageSet, sim: SimConfig) -> TraceKey:
        return TraceKey(
            checkpoint_sha256=self.model_sha256,
            snn_fingerprint=self.snn_fingerprint(),
            conversion=asdict(self.conversion),
            coding={"name": type(sim.coding).__name__, **asdict(sim.coding)},
            timesteps=sim.timesteps,
            seed=int(getattr(sim.coding, "seed", 0)),
            dataset=data.name,
            split=data.split,
            image_indices_sha256=indices_sha256(data.indices),
            images=len(data),
            heads=self.spec.head_positions,
            engine=sim.engine_key(),
        )


def ann_correct(ckpt: Checkpoint, data: ImageSet, indices: np.ndarray) -> dict[int, np.ndarray]:
    """Per head, whether the ANN classifies each image of `data` whose row is in `indices`
    correctly: (len(indices),) bool, in the order of `indices`."""
    import torch

    pos = {int(r): i for i, r in enumerate(data.indices)}
    try:
        rows = np.array([pos[int(r)] for r in indices])
    except KeyError as e:
        raise TraceError(
            f"trace image row {e} is not in the {data.name} {data.split} split"
        ) from None
    net = ckpt.build()
    with torch.no_grad():
        out = net(torch.from_numpy(data.x[rows]))
    y = data.y[rows]
    return {h: v.argmax(1).numpy() == y for h, v in out.items()}


def choose_ic(ckpt: CheckpointInfo | Checkpoint, target_fraction: float) -> int:
    """The shallowest IC whose ANN accuracy reaches target_fraction x the FC's; else the best.
    Accuracies on the validation split when the checkpoint has one (else on the test split)."""
    ics = list(ckpt.spec.ic_positions)
    if not ics:
        raise ModelError(
            "the checkpoint has no IC heads; train one with some (`TrainConfig.ic_positions`,"
            " hwsim train --ic)"
        )
    accuracy = ckpt.validation_accuracy or ckpt.accuracy
    goal = target_fraction * accuracy[FC_HEAD]
    good = [i for i in sorted(ics) if accuracy.get(i, 0.0) >= goal]
    return good[0] if good else max(ics, key=lambda i: accuracy.get(i, 0.0))


def _nir_given(nir: NirOptions) -> tuple[str, ...]:
    """The NIR import options `nir` sets (those a checkpoint cannot take)."""
    return tuple(f for f in ("dataset", "fc_output", "convention") if getattr(nir, f) is not None)


def _listed(params: tuple[str, ...]) -> str:
    """Parameters as `{a}`, `{a} and {b}`, `{a}, {b} and {c}` (rendered by the caller's names)."""
    names = [f"{{{p}}}" for p in params]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _verb(params: tuple[str, ...]) -> str:
    return "applies" if len(params) == 1 else "apply"


def network_spec(
    network: str | Path | NetSpec | ImportedSpec,
    ics: ICChoice | None = None,
    nir: NirOptions | None = None,
) -> NetSpec | ImportedSpec:
    """The network a geometry command (map, estimate) reads: a model file's (a NIR file, on
    the dataset of `nir` if given, or a checkpoint) or a zoo geometry, with the IC heads `ics`
    instead of its own (None: its own). `ALL_ICS` is every IC of an imported network, and
    every block of a zoo network (a geometry can place an IC on any block)."""
    nir = nir or NirOptions()
    if nir != NirOptions() and not (isinstance(network, str | Path) and is_nir_path(network)):
        given = _nir_given(nir)
        where = network if isinstance(network, str | Path) else "a zoo geometry"
        raise InputError(
            f"{where}: {_listed(given)} {_verb(given)} only to NIR models (.nir); a checkpoint or"
            " a zoo geometry brings its own classes, heads and neurons",
            params=given,
        )
    if isinstance(network, str | Path):
        network = Path(network)
        if is_nir_path(network):
            known = nir.dataset is not None
            network = read_nir(
                network,
                nir,
                input_shape=dataset_input_shape(nir.dataset) if known else None,
                num_classes=dataset_num_classes(nir.dataset) if known else None,
            ).spec
        else:
            from hwsim.model.nets import load_checkpoint

            network = load_checkpoint(network).spec
    if ics is None:
        return network
    if isinstance(network, ImportedSpec):
        chosen = network.ic_positions if ics == ALL_ICS else ics
        return network.with_heads((*chosen, FC_HEAD))
    chosen = tuple(range(len(network.blocks()))) if ics == ALL_ICS else ics
    return NetSpec(network.name, network.width, network.input_shape, network.num_classes, chosen)
