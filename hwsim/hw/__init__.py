"""Hardware model: architecture configuration, mapping and energy."""
