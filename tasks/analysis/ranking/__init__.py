"""The order in which workloads starve, and what buys months."""
