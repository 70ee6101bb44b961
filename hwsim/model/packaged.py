"""Where hwsim's own files live: the architecture files and trained models shipped inside the
package (`hwsim/data/arch/*.yaml`, `hwsim/data/models/*.pt`, also reachable in a checkout as
`arch_configs/` and `models/`), found by name (`--arch spikesim`, `--model vgg19`), and the
default trace cache (`cache_root`), which does not depend on the working directory.

Loads nothing but the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
"""The package's data folder."""
ARCH_FOLDER = DATA / "arch"
MODEL_FOLDER = DATA / "models"
ARCH_SUFFIX = ".yaml"
MODEL_SUFFIX = ".pt"
LOCAL_MODELS = Path("models")
"""A bare model name that is not a file is looked for here first (DESIGN.md), then packaged."""

CACHE_ENV = "HWSIM_TRACES"
"""An environment variable naming the default trace cache folder."""


def _names(folder: Path, suffix: str) -> tuple[str, ...]:
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.name.removesuffix(suffix) for p in folder.glob(f"*{suffix}")))


def arch_names() -> tuple[str, ...]:
    """The packaged architectures, by name (`spikesim`, ...)."""
    return _names(ARCH_FOLDER, ARCH_SUFFIX)


def model_names() -> tuple[str, ...]:
    """The packaged trained models, by name (`vgg19`, ...)."""
    return _names(MODEL_FOLDER, MODEL_SUFFIX)


def is_bare(text: str | Path) -> bool:
    """Whether `text` is a bare name: no folder part (`spikesim`, `vgg19.pt`)."""
    return Path(text).parent == Path(".") and str(text) not in ("", ".", "..")


def _packaged(folder: Path, name: str, suffix: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}{suffix}"):
        if candidate.suffix == suffix and candidate.is_file():
            return candidate
    return None


def resolve_arch(text: str | Path) -> Path:
    """An architecture given on the command line: an existing path as given; a bare name that
    is not a file here (with or without .yaml) the packaged file of that name; else `text` as
    a path (whose absence the caller reports)."""
    path = Path(text)
    if path.exists() or not is_bare(text):
        return path
    return _packaged(ARCH_FOLDER, str(text), ARCH_SUFFIX) or path


def resolve_model(text: str | Path) -> Path:
    """A model given on the command line: an existing path as given; a bare name that is not a
    file here: models/NAME in the working directory if it is a file (DESIGN.md), else the
    packaged model of that name (with or without .pt); else `text` as a path."""
    path = Path(text)
    if path.exists() or not is_bare(text):
        return path
    local = LOCAL_MODELS / path
    if local.is_file():
        return local
    return _packaged(MODEL_FOLDER, str(text), MODEL_SUFFIX) or path


def cache_root() -> Path:
    """The default trace cache: $HWSIM_TRACES if set, else hwsim/traces under the user's cache
    folder ($XDG_CACHE_HOME, by default ~/.cache), the same from every working directory."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hwsim" / "traces"
