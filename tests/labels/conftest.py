"""Fixtures for the relabelling tests: the diagnostics tests' workload and thread settings."""

from tests.diagnostics.conftest import _one_torch_thread, small_data, workload_hmm

__all__ = ["_one_torch_thread", "small_data", "workload_hmm"]
