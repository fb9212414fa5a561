"""The runtime files: what runs in production, and the one list of them.

deploy.sh ships exactly these and debug_and_reset.sh debugs exactly these, each from a folder
of its own, so tests, the simulator and dev tools never ship and the SDK's dependency scan
(pipreqs, over the whole project folder) never sees their imports. Add any new runtime
module here.
"""

import os
import shutil
from pathlib import Path

from devkit import REPO_ROOT

RUNTIME_FILES = ("connector.py", "requirements.txt")


def missing_runtime_files(repo: Path = REPO_ROOT) -> list:
    """The runtime files that `repo` lacks."""
    return [name for name in RUNTIME_FILES if not (repo / name).is_file()]


def stage_runtime_files(folder: Path, repo: Path = REPO_ROOT) -> Path:
    """`folder` (created if missing) holding a copy of each runtime file of `repo`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_FILES:
        shutil.copy(repo / name, folder / name)
    return folder


def staged_files(folder: Path) -> list:
    """The files staged in `folder`, relative and sorted; a link (such as the files/ folder
    a debug run links back to the repository) is neither listed nor followed."""
    found = []
    for parent, _folders, names in os.walk(folder):
        for name in names:
            path = Path(parent) / name
            if not path.is_symlink():
                found.append(str(path.relative_to(folder)))
    return sorted(found)
