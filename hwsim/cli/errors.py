"""The command line's names for the API's parameters, used when an error is printed.

An `HwsimError` names the parameters it is about (`HwsimError.params`); the command line prints
each as the flag that sets it. `FLAGS` is the one table of those names: every parameter that
an error of hwsim names has its flag here (tests/test_cli.py checks the source for it).
"""

from __future__ import annotations

import errno
from pathlib import Path

from hwsim.atomic import DISK_FULL, disk_full
from hwsim.errors import HwsimError

API_ONLY = frozenset({"labels", "nir"})
"""Parameters of `hwsim.profile`, which has no command: its errors never reach the command
line, so they have no flag."""

FLAGS: dict[str, str] = {
    "family": "--ic-positions",  # the positions a sweep's simultaneous intervals hold over
    "ties": "--ties",
    "accuracy": "--accuracy",  # hwsim explore's (hwsim.cli.explore)
    "constraint": "--constraint",
    "method": "--method",
    "objectives": "--objectives",
    "search": "--search",
    "search_seed": "--search-seed",
    "population": "--population",
    "vary": "--vary",
    "target": "--target",
    "adc_bits": "--adc-bits",
    "arch": "--arch",
    "backend": "--backend",
    "base": "--base",
    "config": "--config",
    "batch_size": "--batch-size",
    "calibration_images": "--calibration-images",
    "cells_per_weight": "--cells-per-weight",
    "classes": "--classes",
    "coding": "--coding",
    "data_root": "--data-root",
    "dataset": "--dataset",
    "device_seed": "--device-seed",
    "executor": "--executor",
    "fc_output": "--fc-output",
    "convention": "--convention",
    "nir_target": "--nir-target",
    "first_layer": "--first-layer",
    "folds": "--tune-on cross-fit:K, K =",
    "full_scale": "--full-scale",
    "full_scale_levels": "--full-scale-levels",
    "hardware": "--hardware",
    "ic": "--ic",
    "ic_positions": "--ic-positions",
    "images": "--images",
    "input": "--input",
    "lr": "--lr",
    "measurements": "--measurements",
    "model": "--model",
    "net": "--net",
    "out": "--out",
    "sa0_rate": "--sa0-rate",
    "sa1_rate": "--sa1-rate",
    "scheduler": "--scheduler",
    "seed": "--seed",
    "spike_rate": "--spike-rate",
    "summary": "--summary",
    "test_trace": "--trace",
    "threads": "--threads",
    "timesteps": "--timesteps",
    "timing": "--timing",
    "trace_root": "--traces",
    "tune_images": "--tune-images",
    "tune_on": "--tune-on",
    "v0": "--v0",
    "validation": "--validation",
    "variation_sigma": "--variation-sigma",
    "wait_workers": "--wait-workers",
    "width": "--width",
    "workers": "--workers",
}
"""API parameter -> the command-line flag that sets it."""


def message(error: BaseException) -> str:
    """The error's message as the command line says it: parameters named by their flags; an
    OS error as its path and what went wrong (a full disk with the space free there)."""
    if isinstance(error, HwsimError):
        return error.render(FLAGS)
    if isinstance(error, OSError):
        where = error.filename
        if error.errno in DISK_FULL:
            return disk_full(Path(where or ".")).render(FLAGS)
        what = error.strerror or errno.errorcode.get(error.errno or 0) or str(error)
        if where is None:
            return what
        other = f" -> {error.filename2}" if error.filename2 else ""
        return f"{where}{other}: {what}"
    return str(error)
