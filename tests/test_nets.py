"""Model zoo geometry, MAC counts and checkpoint I/O."""

from pathlib import Path

import pytest
import torch

from hwsim.errors import ModelError
from hwsim.model.graph import FC_HEAD, LayerKind
from hwsim.model.nets import HeadedNet, load_checkpoint, save_checkpoint
from hwsim.model.netspec import NetSpec
from hwsim.model.packaged import resolve_model


def test_vgg19_channels_and_strides_follow_design():
    spec = NetSpec("vgg19", 1.0, (3, 32, 32), 10)
    blocks = spec.blocks()
    assert [b.out_channels for b in blocks] == [64, 64, 128, 128, 256, 256, 256, 256] + [512] * 8
    assert [b.stride for b in blocks].count(2) == 4
    assert blocks[-1].out_hw == (2, 2)


def test_width_multiplier_and_28px_input():
    spec = NetSpec("vgg19", 0.125, (1, 28, 28), 10)
    hw = [b.out_hw for b in spec.blocks()]
    assert hw[0] == (28, 28) and hw[2] == (14, 14) and hw[4] == (7, 7) and hw[8] == (4, 4)
    assert hw[12] == (2, 2)
    assert spec.blocks()[0].out_channels == 8 and spec.blocks()[-1].out_channels == 64


@pytest.mark.parametrize("name,n_blocks", [("resnet18", 9), ("resnet34", 17), ("vgg11", 8)])
def test_forward_shapes_every_head(name, n_blocks):
    spec = NetSpec(name, 1 / 16, (3, 32, 32), 7, (1, n_blocks - 1))
    assert len(spec.blocks()) == n_blocks
    out = HeadedNet(spec)(torch.zeros(2, 3, 32, 32))
    assert set(out) == {1, n_blocks - 1, FC_HEAD}
    assert all(v.shape == (2, 7) for v in out.values())


def test_macs_match_a_hand_count():
    spec = NetSpec("vgg11", 1 / 16, (1, 16, 16), 10, (1,))
    # block 0: 1->4 ch, 3x3, 16x16 out; block 1: 4->8 ch, stride 2, 8x8 out; IC1 linear 8x10
    # GAP counts its C x H x W accumulations: 8 channels x 8 x 8
    expected = 1 * 4 * 9 * 256 + 4 * 8 * 9 * 64 + 8 * 8 * 8 + 8 * 10
    assert spec.graph().macs_to_head(1) == expected
    assert spec.graph().macs_to_head(FC_HEAD) > spec.graph().macs_to_head(1)


def test_geometry_of_residual_block_and_heads():
    spec = NetSpec("resnet18", 0.25, (3, 32, 32), 10, (3,))
    layers = {g.name: g for g in spec.graph().layers}
    skip = layers["block3.skip"]
    assert skip.kernel == (1, 1) and skip.out_hw == (16, 16) and skip.in_channels == 16
    assert layers["block3.conv2"].in_channels == 32
    gap = layers["ic3.gap"]
    assert gap.kind is LayerKind.GAP and gap.kernel == (16, 16) and gap.head == 3
    assert layers["fc.linear"].in_channels == 128 and layers["fc.linear"].head == FC_HEAD


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "vgg7"}, "unknown network"),
        ({"width": 0}, "width"),
        ({"ic_positions": (16,)}, "IC position 16"),
        ({"input_shape": (1, 0, 28)}, "input shape"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_bad_specs_are_named(kwargs, match):
    base = {"name": "vgg19", "width": 0.125, "input_shape": (1, 28, 28), "num_classes": 10}
    with pytest.raises(ModelError, match=match):
        NetSpec(**(base | kwargs)).blocks()


def test_checkpoint_round_trip_weights_only(tiny_checkpoint, tmp_path):
    ckpt, path = tiny_checkpoint
    payload = torch.load(path, weights_only=True)  # must not need pickled classes
    assert payload["spec"]["name"] == "vgg11"
    loaded = load_checkpoint(path)
    assert loaded.spec == ckpt.spec and loaded.accuracy == pytest.approx(ckpt.accuracy)
    for k, v in ckpt.state_dict.items():
        assert torch.equal(loaded.state_dict[k], v)
    assert "hwsim train --net vgg11" in loaded.training["command"]


def test_bad_checkpoints(tmp_path, tiny_checkpoint):
    with pytest.raises(ModelError, match="no such model file"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="junk.pt"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ModelError, match="not an hwsim checkpoint"):
        load_checkpoint(foreign)
    ckpt, _ = tiny_checkpoint
    broken = tmp_path / "broken.pt"
    state = dict(ckpt.state_dict)
    state.pop(next(iter(state)))
    save_checkpoint(type(ckpt)(ckpt.spec, state, ckpt.dataset, ckpt.accuracy), broken)
    with pytest.raises(ModelError, match="do not match"):
        load_checkpoint(broken)


def test_save_is_atomic_on_failure(tmp_path, tiny_checkpoint, monkeypatch):
    ckpt, _ = tiny_checkpoint
    target = tmp_path / "m.pt"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(ckpt, target)
    assert list(tmp_path.iterdir()) == []


def test_bare_model_name_resolves_to_models_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.pt").write_bytes(b"x")
    assert resolve_model("net.pt") == Path("models/net.pt")
    assert resolve_model("other.pt") == Path("other.pt")
