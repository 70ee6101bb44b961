"""Joint training of the FC and IC heads (Habara et al. 2024, eqs. 31-32).

Loss = Loss_FC + sum_i tau_i(e) Loss_IC_i, tau_i(e) = (N_MAC_IC_i / N_MAC_FC) * e / N_epochs,
with e the 1-based epoch, so an IC's weight grows linearly to its MAC ratio by the last epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.errors import InputError
from hwsim.model.data import ImageSet, load_dataset
from hwsim.model.graph import FC_HEAD
from hwsim.model.nets import Checkpoint, HeadedNet
from hwsim.model.netspec import NetSpec
from hwsim.model.train_config import TrainConfig


def augment_cifar(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The paper's CIFAR training augmentation (section 6.2), per image, batched.

    Random HxW crop after 4-pixel zero padding, horizontal flip with p=0.5, then rotation by a
    uniform angle in [-15, 15] degrees about the centre, composed into one nearest-neighbour
    `grid_sample` (torchvision's defaults). Zero means 0 in `x`'s (normalised) space.
    `x`: float (N, C, H, W); returns the same shape, dtype and device.
    """
    n, _, h, w = x.shape
    opts = {"generator": generator, "device": generator.device}
    shift = torch.randint(-4, 5, (n, 2), **opts).to(x.device, torch.float64)
    flip = torch.rand(n, **opts).to(x.device) < 0.5
    angle = ((torch.rand(n, **opts) * 2 - 1) * math.radians(15)).to(x.device, torch.float64)
    # Output pixel u (pixel units about the centre) reads input flip(rot(-angle) u) + shift.
    cos, sin = torch.cos(angle), torch.sin(angle)
    sign = torch.where(flip, -1.0, 1.0).to(torch.float64)
    a = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    a[:, 0] *= sign[:, None]
    # Pixel units -> affine_grid's normalised [-1, 1] units (align_corners=False).
    scale = torch.tensor([w / 2, h / 2], dtype=torch.float64, device=x.device)
    theta = torch.cat(
        [a * scale[None, None, :] / scale[None, :, None], (shift / scale)[..., None]], 2
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def tau(spec: NetSpec, ic: int, epoch: int, epochs: int) -> float:
    """IC loss weight of paper eq. 32 at 1-based `epoch`."""
    return spec.graph().macs_to_head(ic) / spec.graph().macs_to_head(FC_HEAD) * epoch / epochs


def evaluate(net: HeadedNet, data: ImageSet, batch_size: int = 500) -> dict[int, float]:
    """Test accuracy of every head (fraction in [0, 1])."""
    net.eval()
    correct: dict[int, int] = {}
    with torch.no_grad():
        for i in range(0, len(data.y), batch_size):
            x = torch.from_numpy(data.x[i : i + batch_size])
            y = torch.from_numpy(data.y[i : i + batch_size])
            for head, logits in net(x).items():
                correct[head] = correct.get(head, 0) + int((logits.argmax(1) == y).sum())
    return {h: c / len(data.y) for h, c in correct.items()}


TRAIN_STAGE = "train"
"""The stage name `train` reports to its progress callback."""


def train(
    cfg: TrainConfig,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> Checkpoint:
    """Train a network with IC heads; return a checkpoint with test (and validation) accuracies
    per head and the exact split it was trained on (`cfg.validation` training images held out,
    never trained on).

    `progress(TRAIN_STAGE, done, total)` is called with 0 before the first batch and after
    every batch (`total` = epochs x batches per epoch); None reports nothing (training draws no
    bars itself; the command line passes `progress`).
    """
    torch.manual_seed(cfg.seed)
    splits = {
        s: load_dataset(cfg.dataset, s, cfg.data_root, seed=cfg.seed, validation=cfg.validation)
        for s in ("train", "validation", "test")
        if s != "validation" or cfg.validation
    }
    train_set, test_set = splits["train"], splits["test"]
    spec = NetSpec(
        cfg.net, cfg.width, train_set.input_shape, train_set.num_classes, cfg.ic_positions
    )
    net = HeadedNet(spec)
    opt = torch.optim.SGD(
        net.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=True,
    )
    steps_per_epoch = -(-len(train_set.y) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(train_set.x)
    y_all = torch.from_numpy(train_set.y)
    augment = cfg.dataset.startswith("cifar")
    start = time.perf_counter()
    total, done = cfg.epochs * steps_per_epoch, 0
    report = progress or (lambda stage, done, total: None)
    report(TRAIN_STAGE, done, total)
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        weights = {h: tau(spec, h, epoch, cfg.epochs) for h in spec.ic_positions}
        order = torch.randperm(len(y_all), generator=gen)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            x = x_all[idx]
            if augment:
                x = augment_cifar(x, gen)
            out = net(x)
            y = y_all[idx]
            loss = loss_fn(out[FC_HEAD], y)
            for h, w in weights.items():
                loss = loss + w * loss_fn(out[h], y)
            if not bool(torch.isfinite(loss)):  # diverged: no NaN checkpoint is written
                raise InputError(
                    f"training diverged at epoch {epoch} (loss {loss.item()}); lower the"
                    f" learning rate lr (--lr, now {cfg.lr}) or check the data"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            report(TRAIN_STAGE, done, total)
    return Checkpoint(
        spec=spec,
        state_dict=net.state_dict(),
        dataset={
            "name": cfg.dataset,
            "split_seed": cfg.seed,
            "train_images": len(train_set),
            "validation_images": cfg.validation,
            "test_images": len(test_set),
            **{f"{s}_rows_sha256": d.rows_sha256() for s, d in splits.items()},
            "data_root": str(Path(cfg.data_root).resolve()) if cfg.data_root else None,
        },
        accuracy=evaluate(net, test_set),
        validation_accuracy=evaluate(net, splits["validation"]) if cfg.validation else {},
        training={
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "command": cfg.command(),
            "seconds": round(time.perf_counter() - start, 1),
            "torch": str(torch.__version__),
            "numpy": np.__version__,
        },
    )
