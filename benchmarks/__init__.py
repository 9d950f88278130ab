"""Speed benchmarks: scripts that print their figures; run with ``python -m benchmarks.<name>``."""
