"""Synthetic workloads and history records: the demo, tests and benchmarks drive the platform with them."""
