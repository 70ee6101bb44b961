"""Layer-geometry builders shared by the hardware tests."""

from hwsim.graph import Layer, LayerKind


def conv(name, c_in, c_out, k, hw, block):
    return Layer(name, LayerKind.CONV, c_in, c_out, (k, k), (hw, hw), block=block)


def gap(name, channels, hw, head):
    return Layer(name, LayerKind.GAP, channels, channels, (hw, hw), (1, 1), head)


def linear(name, features, classes, head):
    return Layer(name, LayerKind.LINEAR, features, classes, (1, 1), (1, 1), head)
