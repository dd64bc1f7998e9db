"""Network definitions whose module names match the shipped weight files."""
