"""The evaluation pipeline: sessions, trace and tuning caches, chip costing, the hardware and
cycle-level modes, sweeps."""
