"""hwsim: SNN hardware/algorithm co-design simulator for RRAM compute-in-memory accelerators."""

__version__ = "0.1.0"
