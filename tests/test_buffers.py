"""The engine's kept buffers (hwsim.engine._buffers): a large buffer is reused only when no
array uses it, with the contents `aligned` asks for, and no more than KEEP_BYTES are kept."""

import numpy as np
import pytest

from hwsim.engine import _buffers
from hwsim.engine import _kernels as K

BIG = _buffers.MIN_BYTES // 4 + 1000  # float32 elements of an array that is kept


@pytest.fixture(autouse=True)
def nothing_kept():
    _buffers.drop_kept()
    yield
    _buffers.drop_kept()


def test_a_buffer_in_use_is_never_handed_out_again():
    a = K.aligned(BIG, np.float32, 1.0)
    b = K.aligned(BIG, np.float32, 2.0)
    assert not np.shares_memory(a, b)
    assert (a == 1.0).all() and (b == 2.0).all()


def test_a_view_keeps_its_buffer_in_use():
    a = K.aligned(BIG, np.float32, 1.0)
    part = a[10:20]
    del a
    b = K.aligned(BIG, np.float32, 2.0)
    assert not np.shares_memory(part, b)
    assert (part == 1.0).all()


def test_a_free_buffer_is_reused_with_the_requested_contents():
    a = K.aligned(BIG, np.float32, 1.0)
    address = a.ctypes.data
    del a
    b = K.aligned((BIG // 4, 4), np.float32, 3.0)
    assert b.ctypes.data == address
    assert b.shape == (BIG // 4, 4) and (b == 3.0).all()
    assert b.ctypes.data % K.ALIGN == 0


def test_small_and_much_smaller_requests_get_new_buffers():
    a = K.aligned(BIG, np.float32)
    address = a.ctypes.data
    del a
    assert K.aligned(BIG // 3, np.float32).ctypes.data != address  # < half of the free one
    assert K.aligned(100, np.float32).ctypes.data != address
    assert _buffers.kept_bytes() < 3 * 4 * BIG


def test_kept_bytes_are_bounded(monkeypatch):
    monkeypatch.setattr(_buffers, "KEEP_BYTES", 3 * 4 * BIG)
    arrays = [K.aligned(BIG, np.float32, i) for i in range(6)]
    assert _buffers.kept_bytes() <= 3 * 4 * BIG + 3 * K.ALIGN
    assert all((a == i).all() for i, a in enumerate(arrays))  # dropped ones stay valid
    _buffers.drop_kept()
    assert _buffers.kept_bytes() == 0
