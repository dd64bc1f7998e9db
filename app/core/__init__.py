"""Pure PyTorch/numpy engine: never imports the web framework."""
