"""What one accelerator model delivers to a step, with its source and its spread: no calendar."""
