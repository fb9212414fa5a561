"""Development-only measurements: the benchmark and the soak. Never deployed."""
