"""Design-space exploration: architecture variants, their evaluation from the result store,
search and Pareto fronts (docs/explore.md)."""
