"""The typed results of the pipeline's entry points, read by report (filled in by the api split)."""
