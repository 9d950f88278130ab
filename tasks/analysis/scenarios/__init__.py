"""Purchase plans compared, side by side."""
