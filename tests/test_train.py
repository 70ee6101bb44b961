"""Joint training: tau schedule (eq. 32), learning, determinism, progress reports, the
reproduce command."""

import dataclasses

import pytest
import torch

from hwsim.model.data import SYNTHETIC_SIZES
from hwsim.model.graph import FC_HEAD
from hwsim.model.netspec import NetSpec
from hwsim.model.train import TRAIN_STAGE, TrainConfig, tau, train


def test_tau_grows_linearly_to_the_mac_ratio():
    spec = NetSpec("vgg11", 0.25, (1, 16, 16), 10, (2,))
    ratio = spec.graph().macs_to_head(2) / spec.graph().macs_to_head(FC_HEAD)
    assert 0 < ratio < 1
    assert tau(spec, 2, 5, 20) == pytest.approx(ratio * 5 / 20)
    assert tau(spec, 2, 20, 20) == pytest.approx(ratio)


def test_training_learns_every_deep_head(tiny_checkpoint):
    ckpt, _ = tiny_checkpoint
    assert ckpt.accuracy[FC_HEAD] > 0.5  # 10 classes: chance is 0.1
    assert set(ckpt.accuracy) == {2, 4, FC_HEAD}


def test_same_seed_same_weights_and_progress_counts_every_batch(tiny_config, capsys):
    cfg = dataclasses.replace(tiny_config, epochs=2)
    calls: list[tuple[str, int, int]] = []
    a = train(cfg, progress=lambda *c: calls.append(c))
    b = train(cfg)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    c = train(dataclasses.replace(cfg, seed=1))
    assert not all(torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)
    # the synthetic training images less the validation split, in batches (the last may be
    # partial), for 2 epochs: one call before the first batch, one after each batch
    images = SYNTHETIC_SIZES["train"] - cfg.validation
    batches = 2 * -(-images // cfg.batch_size)
    assert calls == [(TRAIN_STAGE, done, batches) for done in range(batches + 1)]
    assert capsys.readouterr() == ("", "")  # training itself prints nothing


def test_command_reproduces_the_config():
    cfg = TrainConfig(ic_positions=(3, 5), epochs=7, lr=0.01)
    cmd = cfg.command()
    assert "--ic 3,5" in cmd and "--epochs 7" in cmd and "--lr 0.01" in cmd


def test_checkpoint_records_its_split_and_never_trains_on_validation(tiny_checkpoint, tiny_config):
    from hwsim.model.data import load_dataset

    ckpt, _ = tiny_checkpoint
    d = ckpt.dataset
    n_val = tiny_config.validation
    assert n_val > 0 and ckpt.validation_images == n_val
    split = {s: load_dataset("synthetic", s, validation=n_val) for s in ("train", "validation")}
    split["test"] = load_dataset("synthetic", "test")
    for s, data in split.items():
        assert d[f"{s}_images"] == len(data)
        assert d[f"{s}_rows_sha256"] == data.rows_sha256()
    # the rows trained on are the training split without the validation images
    full = load_dataset("synthetic", "train")
    assert d["train_images"] + d["validation_images"] == len(full)
    assert not set(split["train"].indices) & set(split["validation"].indices)
    assert set(ckpt.validation_accuracy) == set(ckpt.accuracy)
    assert f"--validation {n_val}" in ckpt.training["command"]
