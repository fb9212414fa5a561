"""Development-only helpers shared by tests and benchmarks; never deployed."""
