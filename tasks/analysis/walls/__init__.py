"""Which wall each workload hits, when, and what lifts a capacity or latency wall."""
