"""Runtime services shared by the web layer and the CLI: inference queue, analysis store."""
