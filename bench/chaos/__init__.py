"""A chaos run of the real stack with an independent invariant checker: `python -m bench.chaos`."""
