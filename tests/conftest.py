"""Shared fixtures: a tiny trained checkpoint on the synthetic dataset."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from hwsim.model.nets import save_checkpoint
from hwsim.model.train import TrainConfig, train

torch.set_num_threads(1)
# property tests keep no example database and their caches outside the checkout
settings.register_profile("hwsim", database=None)
settings.load_profile("hwsim")
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="hwsim-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
# no test writes into the user's trace cache: the default cache is a temporary folder
if "HWSIM_TRACES" not in os.environ:
    os.environ["HWSIM_TRACES"] = tempfile.mkdtemp(prefix="hwsim-traces-")
    atexit.register(shutil.rmtree, os.environ["HWSIM_TRACES"], ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    return TrainConfig(
        net="vgg11",
        dataset="synthetic",
        width=1 / 16,
        ic_positions=(2, 4),
        epochs=3,
        batch_size=32,
        lr=0.05,
        seed=0,
        validation=128,
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_config, tmp_path_factory):
    """(Checkpoint, path) of a VGG11 at width 1/16 trained 3 epochs on synthetic 16x16 data."""
    ckpt = train(tiny_config)
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    save_checkpoint(ckpt, path)
    return ckpt, path


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean():
    """Tests never write into the checkout: its traces/ folder is the same after the run."""
    traces = Path(__file__).resolve().parents[1] / "traces"
    before = sorted(p.name for p in traces.iterdir()) if traces.is_dir() else []
    yield
    after = sorted(p.name for p in traces.iterdir()) if traces.is_dir() else []
    assert after == before, f"tests wrote into {traces}: {sorted(set(after) - set(before))}"
