"""convlens: a web-based CNN visualizer."""
