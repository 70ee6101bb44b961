"""The co-design sweep as a command runs it: a model file's network on an architecture (with the
config's ADC full scale, calibrated on training images where asked) through
`pipeline.hardware.codesign`, over one knob's values."""

from __future__ import annotations

from hwsim.errors import InputError
from hwsim.hw.arch import FullScale, load_arch
from hwsim.hw.synapse import with_adc
from hwsim.model.conversion import ConversionParams
from hwsim.model.graph import FC_HEAD
from hwsim.pipeline.config import CodesignConfig, ProgressFn
from hwsim.pipeline.hardware import CodesignRow, FunctionalRun, codesign
from hwsim.pipeline.session import Session
from hwsim.results import FunctionalResult


def codesign_sweep(cfg: CodesignConfig, progress: ProgressFn | None = None) -> FunctionalResult:
    """`codesign` of `cfg`'s model on its architecture (with `cfg`'s ADC full scale, calibrated
    on the training images where asked), over its knob's values; progress(stage, done, total)
    after each value."""
    session = Session.open(cfg.model, cfg.data_root, ConversionParams(), cfg.nir)
    arch = load_arch(cfg.arch)
    if cfg.full_scale_levels is not None:
        arch = with_adc(arch, full_scale_levels=cfg.full_scale_levels)
    elif cfg.full_scale is not None:
        arch = with_adc(arch, full_scale=cfg.full_scale)
    if cfg.calibration_images is not None and arch.adc.full_scale is not FullScale.CALIBRATED:
        raise InputError(
            f"{{calibration_images}} sets a calibrated ADC full scale, and {cfg.arch}'s is"
            f" {arch.adc.full_scale}; add {{full_scale}} calibrated or leave it out",
            params=("calibration_images", "full_scale"),
        )
    heads = (FC_HEAD,)
    if cfg.ic is not None:
        session.check_ics((cfg.ic,))
        heads = (cfg.ic, FC_HEAD)
    data = session.images("test", cfg.images)
    calibration = session.calibration(cfg.calibration_images or FunctionalRun.calibration_images)
    done: list[CodesignRow] = []

    def on_value(row: CodesignRow) -> None:
        done.append(row)
        if progress is not None:
            progress(f"{cfg.knob} settings", len(done), len(cfg.values))

    result = codesign(
        session.snn.with_heads(heads),
        arch,
        data.x,
        data.y,
        cfg.timesteps,
        cfg.knob,
        list(cfg.values),
        cfg.functional,
        calibration=calibration,
        on_value=on_value,
    )
    return FunctionalResult(result, arch, session.spec)
