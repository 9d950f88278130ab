"""Training: parallel layouts, memory per device, time per step, and the layout search."""
