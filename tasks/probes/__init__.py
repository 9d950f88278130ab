"""memwall."""
