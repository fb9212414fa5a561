"""Development-only helpers shared by the scripts, tests and benchmarks; never deployed."""

from pathlib import Path

# The repository: every path the helpers use is relative to it.
REPO_ROOT = Path(__file__).resolve().parents[1]
