"""The entry points that write a model: `export` (NIR for a peer tool), `convert` (a checkpoint
to its SNN) and `train` (an ANN with IC heads)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.atomic import (
    check_output_file,
)
from hwsim.errors import InputError, OutputError
from hwsim.model.conversion import ConversionParams
from hwsim.model.graph import FC_HEAD
from hwsim.model.nir_convention import PRESETS
from hwsim.model.nir_export import write_nir
from hwsim.model.nir_io import NIR_SUFFIX, NirOptions
from hwsim.pipeline.config import (
    ICChoice,
    ProgressFn,
)
from hwsim.pipeline.outputs import (
    input_roots,
    is_exported_nir,
    is_model_file,
)
from hwsim.pipeline.session import CheckpointSource, Session
from hwsim.results import (
    ConvertResult,
    ExportResult,
    TrainResult,
)

if TYPE_CHECKING:  # torch is imported where a network is trained, converted or saved
    from hwsim.model.train_config import TrainConfig


def export(
    model: Path,
    out: Path,
    ics: ICChoice | None = None,
    *,
    conversion: ConversionParams | None = None,
    data_root: str | None = None,
    nir: NirOptions | None = None,
    target: str = "hwsim",
) -> ExportResult:
    """Write the SNN of `model` (converted with `conversion`, default `ConversionParams()`)
    with the IC heads `ics` (None or "all": all of them) and its FC as a NIR file for the
    tool `target` reads (`hwsim.model.nir_export.export_graph`; docs/nir.md)."""
    if out.suffix.lower() != NIR_SUFFIX:
        raise OutputError(f"{{out}} {out}: a NIR file's name ends in {NIR_SUFFIX}", params=("out",))
    if target not in PRESETS:
        raise InputError(
            f"{{target}} {target!r}: expected one of {', '.join(PRESETS)}", params=("target",)
        )
    inputs = [("model", model), *input_roots(None, data_root)]
    check_output_file(out, "out", inputs, is_exported_nir, "NIR file")
    session = Session.open(model, data_root, conversion or ConversionParams(), nir)
    chosen = session.resolve_ics(ics)
    snn = session.snn.with_heads((*chosen, FC_HEAD))
    write_nir(snn, out, target)
    outputs = (*(f"ic{i}" for i in chosen), "fc")
    return ExportResult(model, out, outputs, len(snn.graph.layers), snn.params.threshold)


def convert(
    model: Path,
    out: Path | None = None,
    *,
    params: ConversionParams | None = None,
    data_root: str | None = None,
) -> ConvertResult:
    """Convert a checkpoint to an SNN (BN folded, weights normalised on its training images;
    `params` default `ConversionParams()`) and, with `out`, write it as a model file that `run`
    and the others accept."""
    if out is not None:
        inputs = [("model", model), *input_roots(None, data_root)]
        check_output_file(out, "out", inputs, is_model_file, "model file")
    from hwsim.model.convert import save_spiking
    from hwsim.model.nets import load_checkpoint

    ckpt = load_checkpoint(model)
    snn = CheckpointSource(model, ckpt.info, data_root, loaded=ckpt).spiking(
        params or ConversionParams()
    )
    if out is not None:
        save_spiking(snn, ckpt, out)
    return ConvertResult(model, tuple(snn.scales), out)


def train(
    cfg: TrainConfig, out: Path | None = None, progress: ProgressFn | None = None
) -> TrainResult:
    """Train an ANN with IC heads (`hwsim.model.train`) and write its checkpoint to `out`
    (default models/NET_DATASET.pt); progress(stage, done, total) after every batch."""
    path = out or Path(f"models/{cfg.net}_{cfg.dataset}.pt")
    check_output_file(path, "out", input_roots(None, cfg.data_root), is_model_file, "model file")
    from hwsim.model.nets import save_checkpoint
    from hwsim.model.train import train as train_network

    checkpoint = train_network(cfg, progress=progress)
    save_checkpoint(checkpoint, path)
    return TrainResult(checkpoint, path)
