"""What one workload costs per unit and per step, and its variants: no device, no calendar."""
