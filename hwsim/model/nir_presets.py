"""The names of the NIR neuron conventions (`hwsim.model.nir_convention.PRESETS`), without
importing NumPy or torch, for the command line's choices (checked before anything loads)."""

CONVENTION_NAMES = ("hwsim", "sinabs", "snntorch", "norse", "spikingjelly")
"""One name per preset, in `PRESETS`' order (tests/test_peers_nir.py checks they agree)."""
