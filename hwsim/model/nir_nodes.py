"""One NIR node's fields read and checked: arrays, integer pairs, shapes, convolution and pooling
geometry, weights, biases and IF gains, each refusal naming the node (`NirError`).

`hwsim.model.nir_io` walks the graph with these; `hwsim.model.nir_export` writes one.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import sys
from typing import Any

import numpy as np

from hwsim.atomic import available_memory_bytes
from hwsim.errors import ModelError
from hwsim.model.graph import Shape

MAX_NODES = 4096
"""Most nodes of a NIR graph hwsim imports: 25 times the largest zoo network (ResNet34 with
an IC on every block, about 160 nodes); reading a NIR file takes about 4 ms per node."""
MAX_MAP_SIDE = 4096
"""Largest height or width of a feature map hwsim imports (the zoo's largest: 64)."""
MEMORY_SHARE = 0.8
"""Share of the available memory one import may allocate (estimated before allocating)."""
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
FLOAT32_MAX = float(np.finfo(np.float32).max)
CURRENT_LIMIT = FLOAT32_MAX / 2**24
"""Largest current one neuron may receive in one step (sum of |weight| over its inputs plus
|bias|, in units of the engine's threshold): the engine integrates in float32, and 2**24
steps (more than the 10**6 timesteps the command line allows, on inputs up to 16) of it stay
finite."""


class NirError(ModelError):
    """A NIR file or graph hwsim cannot import or export; the message names the node."""


NIR_REQUIRED = (1, 0, 6)
"""Oldest nir package hwsim reads and writes with (pyproject.toml: nir>=1.0.6); 1.0.4, which
older peers pin, has no `v_reset` on `nir.IF`."""


def nir_version(text: str) -> tuple[int, ...]:
    """A version string's leading numbers ("1.0.8" -> (1, 0, 8), "1.0.6.dev2" -> (1, 0, 6))."""
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def nir_module():
    """The `nir` package, refused (`NirError`, naming both versions) below `NIR_REQUIRED`."""
    try:
        import nir
    except ImportError:
        raise NirError(
            "NIR files need the `nir` package: pip install 'nir>=1.0.6' (docs/nir.md)"
        ) from None
    try:
        installed = importlib.metadata.version("nir")
    except importlib.metadata.PackageNotFoundError:
        installed = str(getattr(nir, "__version__", "0"))
    if nir_version(installed) < NIR_REQUIRED:
        need = ".".join(map(str, NIR_REQUIRED))
        raise NirError(
            f"the nir package installed is {installed}; hwsim needs nir>={need} (a peer's"
            f" install may have downgraded it: pip install 'nir>={need}', or install the peers"
            " with constraints/peers.txt, docs/nir.md)"
        )
    return nir


def as_array(value: Any, dtype: type = np.float64) -> np.ndarray:
    """A node parameter (numpy array, torch tensor, list or scalar) as a numpy array."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def int_pair(value: Any, what: str, node: str) -> tuple[int, int]:
    """An int or a pair of ints (stride, padding, kernel) as (h, w)."""
    v = as_array(value, np.float64).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, 2)
    if v.size != 2 or not np.all(v == np.round(v)):
        raise NirError(f"node {node!r}: {what} {value!r} is not an integer or a pair of them")
    return int(v[0]), int(v[1])


def kind_of(node: Any) -> str:
    return type(node).__name__


def network_input_shape(name: str, node: Any, dataset_shape: Shape | None) -> Shape:
    """The network input as (C, H, W): the Input node's shape, or, for a flat Input, the
    dataset's image shape with as many values."""
    raw = node.input_type.get("input")
    shape = tuple(int(v) for v in as_array(raw, np.int64).reshape(-1)) if raw is not None else ()
    if shape and min(shape) < 1:
        raise NirError(f"Input {name!r} has shape {shape}; every size must be >= 1")
    if len(shape) == 3:
        if dataset_shape is not None and shape != tuple(dataset_shape):
            raise NirError(
                f"Input {name!r} has shape {shape} but the dataset's images are {dataset_shape}"
            )
        return shape  # type: ignore[return-value]
    if dataset_shape is not None and shape and int(np.prod(shape)) == int(np.prod(dataset_shape)):
        return dataset_shape
    raise NirError(
        f"Input {name!r} has shape {shape or 'unknown'}: hwsim needs images (C, H, W), or a"
        " flat input as large as the --dataset images"
    )


def conv_geometry(name: str, node: Any, in_shape: Shape) -> tuple[int, int]:
    """(stride, padding) of a Conv2d hwsim can map, refusing the others."""
    shape = as_array(node.weight).shape
    if len(shape) != 4 or min(shape) < 1:
        raise NirError(f"Conv2d {name!r}: weight {shape}; expected (out, in, kh, kw), all >= 1")
    groups = int(as_array(node.groups, np.int64).reshape(-1)[0])
    if groups != 1:
        raise NirError(f"Conv2d {name!r}: groups = {groups}; hwsim maps dense convolutions only")
    if int_pair(node.dilation, "dilation", name) != (1, 1):
        raise NirError(f"Conv2d {name!r}: dilation {node.dilation!r}; hwsim needs dilation 1")
    sh, sw = int_pair(node.stride, "stride", name)
    if sh != sw or sh < 1:
        raise NirError(f"Conv2d {name!r}: stride ({sh}, {sw}); hwsim needs equal strides >= 1")
    kh, kw = as_array(node.weight).shape[2:]
    padding = node.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding == "valid":
            return sh, 0
        if padding == "same" and sh == 1 and kh == kw and kh % 2 == 1:
            return sh, (kh - 1) // 2
        raise NirError(
            f"Conv2d {name!r}: padding {padding!r} with a {kh}x{kw} kernel and stride {sh};"
            " hwsim needs one symmetric padding"
        )
    ph, pw = int_pair(padding, "padding", name)
    if ph != pw or ph < 0:
        raise NirError(f"Conv2d {name!r}: padding ({ph}, {pw}); hwsim needs equal padding >= 0")
    if ph >= min(kh, kw):
        raise NirError(
            f"Conv2d {name!r}: padding {ph} with a {kh}x{kw} kernel; hwsim needs padding smaller"
            " than the kernel (a wider padding only adds outputs that read nothing but zeros)"
        )
    return sh, ph


def check_map(kind: str, name: str, shape: tuple[int, ...]) -> None:
    """Refuse a node whose output map is larger than `MAX_MAP_SIDE` on a side."""
    if len(shape) == 3 and max(shape[1:]) > MAX_MAP_SIDE:
        raise NirError(
            f"{kind} {name!r}: a {shape[1]}x{shape[2]} map; hwsim imports maps of up to"
            f" {MAX_MAP_SIDE}x{MAX_MAP_SIDE}"
        )


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse, before allocating it, an array of `nbytes` that the memory left cannot hold."""
    have = available_memory_bytes()
    if nbytes > MEMORY_SHARE * have:
        raise NirError(
            f"{what} needs {nbytes / 2**30:.1f} GiB, more than the {have / 2**30:.1f} GiB of"
            " memory available"
        )


def check_current(kind: str, name: str, weight: np.ndarray, bias: np.ndarray, theta: float) -> None:
    """Refuse weights whose largest one-step current (sum of |weight| over a neuron's inputs
    plus |bias|, after folding r / v_threshold, in units of the engine's threshold `theta`)
    reaches `CURRENT_LIMIT`."""
    per_out = np.abs(weight.astype(np.float64)).reshape(len(weight), -1).sum(axis=1)
    current = float(np.max(per_out + np.abs(bias.astype(np.float64)), initial=0.0)) / theta
    if not current < CURRENT_LIMIT:
        raise NirError(
            f"{kind} {name!r}: a neuron can receive {current:.3g} threshold units in one step"
            f" (sum of |weight| plus |bias|); hwsim's float32 engine needs less than"
            f" {CURRENT_LIMIT:.3g}, so that T steps of it stay finite"
        )


def as_shape(shape: tuple[int, ...]) -> Shape:
    """A NIR tensor shape as hwsim's (C, H, W): a vector (F,) is (F, 1, 1)."""
    return (shape[0], 1, 1) if len(shape) == 1 else (shape[0], shape[1], shape[2])


def out_hw(h: int, w: int, kh: int, kw: int, stride: int, pad: int) -> tuple[int, int]:
    return (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1


def node_weight(name: str, node: Any, dtype: type) -> np.ndarray:
    """A weight node's weight array, refused unless every value is finite."""
    weight = as_array(node.weight, dtype)
    if not np.all(np.isfinite(weight)):
        raise NirError(f"{kind_of(node)} {name!r}: weight has NaN or infinite values")
    return weight


def node_bias(name: str, node: Any, n: int) -> np.ndarray:
    """A weight node's bias (zeros where it has none), refused unless finite and (n,)."""
    bias = getattr(node, "bias", None)
    if bias is None:
        return np.zeros(n, np.float32)
    b = as_array(bias, np.float32).reshape(-1)
    if b.shape != (n,):
        raise NirError(f"{kind_of(node)} {name!r}: bias {b.shape} does not match {n} outputs")
    if not np.all(np.isfinite(b)):
        raise NirError(f"{kind_of(node)} {name!r}: bias has NaN or infinite values")
    return b


def neuron_gain(
    name: str, node: Any, shape: tuple[int, ...], if_r: float, leaky: bool = False
) -> np.ndarray:
    """(r / if_r) / v_threshold of an IF node per neuron (`if_r`: the r of one integration per
    step, the convention's); 1 / v_threshold of a LIF node (`leaky`: its input gain is in its
    neuron model); its reset and firing are checked by
    `hwsim.model.nir_convention.check_neurons`."""
    size, kind = int(np.prod(shape)), kind_of(node)
    check_allocation(8 * size, f"{kind} {name!r} ({size} neurons)")
    r, thr = as_array(node.r) / if_r, as_array(node.v_threshold)
    r = np.ones_like(r) if leaky else r
    for what, v in (("r", r), ("v_threshold", thr)):
        if v.size not in (1, size):
            raise NirError(f"{kind} {name!r}: {what} has {v.size} values for {size} neurons")
    if not (np.all(np.isfinite(r)) and np.all(r > 0)):
        raise NirError(f"{kind} {name!r}: r must be finite and > 0")
    if not (np.all(np.isfinite(thr)) and np.all(thr > 0)):
        raise NirError(f"{kind} {name!r}: v_threshold must be finite and > 0")
    lo, hi = float(np.min(thr)), float(np.max(thr))
    if lo < FLOAT32_TINY or hi > FLOAT32_MAX:
        raise NirError(
            f"{kind} {name!r}: v_threshold {lo if lo < FLOAT32_TINY else hi:g}"
            f" is outside float32's normal range [{FLOAT32_TINY:.3g}, {FLOAT32_MAX:.3g}], where"
            " hwsim's engine compares the membrane with it"
        )
    return np.broadcast_to((r / thr).reshape(-1), (size,)).astype(np.float64)


NEURON_KINDS = ("IF", "LIF")
"""The NIR spiking nodes hwsim's populations are read from."""
SYNAPTIC_KINDS = ("Conv2d", "Affine", "Linear", "AvgPool2d", "SumPool2d", "Flatten")
"""The NIR node kinds on the weight path between two IF populations."""

SUPPORTED_NODES = "Input, Output, Conv2d, Affine, Linear, IF, LIF, Flatten, AvgPool2d and SumPool2d"
"""The NIR node kinds hwsim simulates (named in every refusal)."""


_REFUSED_KINDS: dict[str, str] = {
    "LI": "a leaky integrator without spikes; hwsim's neurons are IF and spike",
    "CubaLI": "a current-based leaky integrator without spikes; hwsim's neurons are IF",
    "I": "an integrator without spikes; hwsim's neurons are IF and spike",
    "NIRGraph": "a nested subgraph (how recurrent layers are exported); hwsim is feed-forward",
    "Delay": "a synaptic delay; hwsim's only delay is its fixed one step per layer",
    "Threshold": "a stateless threshold without integration; hwsim's neurons are IF",
    "Scale": "an element-wise scale; fold it into the weights of the layer before it",
    "Conv1d": "a 1-d convolution; hwsim maps 2-d convolutions",
}


def check_kinds(nodes: dict[str, Any]) -> None:
    """Refuse a node kind hwsim cannot simulate, saying why (recurrence, delay...); LIF and
    CubaLIF are read (and CubaLIF refused) by `hwsim.model.nir_convention.check_neurons`."""
    for name, node in nodes.items():
        kind = kind_of(node)
        if kind in _REFUSED_KINDS:
            raise NirError(
                f"node {name!r} is a {kind}: {_REFUSED_KINDS[kind]}. Supported: {SUPPORTED_NODES}"
            )
        if kind not in (*SYNAPTIC_KINDS, "IF", "LIF", "CubaLIF", "Input", "Output"):
            raise NirError(
                f"node {name!r} is a {kind}, unknown to hwsim. Supported: {SUPPORTED_NODES}"
            )
