"""Benchmarks that print JSON with their targets and a baseline measured in the same run."""
