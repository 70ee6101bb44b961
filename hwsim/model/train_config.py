"""What determines a training run (`TrainConfig`), apart from the training (`hwsim.model.train`,
with torch): the command line builds it without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (stored in the checkpoint)."""

    net: str = "vgg19"
    dataset: str = "mnist5k"
    width: float = 0.125
    ic_positions: tuple[int, ...] = ()
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    data_root: str | None = None
    validation: int = 0  # training images held out for tuning (not trained on)

    def command(self) -> str:
        """The `hwsim train` command line that reproduces this run."""
        ics = ",".join(map(str, self.ic_positions)) or "none"
        cmd = (
            f"hwsim train --net {self.net} --dataset {self.dataset} --width {self.width:g}"
            f" --ic {ics} --epochs {self.epochs} --batch-size {self.batch_size}"
            f" --lr {self.lr:g} --seed {self.seed}"
        )
        if self.validation:
            cmd += f" --validation {self.validation}"
        return cmd + (f" --data-root {self.data_root}" if self.data_root else "")
