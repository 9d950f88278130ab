"""Workload descriptions: model presets, the Hugging Face config.json import and the built-in
example workloads, beside the workload model that turns them into FLOPs and bytes."""
