"""The connector's configuration file as the scripts find, read and check it.

Found in the SDK's order: --config (relative to the current folder, like any shell path),
else FIVETRAN_CONFIGURATION (relative to the project folder, as the SDK reads it), else
the project's configuration.json. Read here as JSON, then checked by the connector's own
`validate_configuration`, so a script refuses exactly what a sync would refuse, with the
connector's words (which never quote the api_key).
"""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from devkit import REPO_ROOT
from devkit.console import Failure

DEFAULT_FILENAME = "configuration.json"
# The variable the SDK reads the configuration path from.
CONFIGURATION_ENV = "FIVETRAN_CONFIGURATION"
# Where a configuration path came from, as messages name it.
FROM_FLAG = "--config"
FROM_ENV = CONFIGURATION_ENV
FROM_DEFAULT = "default"


@dataclass(frozen=True)
class ConfigurationFile:
    """A configuration path (absolute) and where it came from (FROM_*)."""

    path: Path
    source: str

    def describe(self) -> str:
        """Where the path came from, for messages."""
        if self.source == FROM_DEFAULT:
            return f"the default, {DEFAULT_FILENAME}"
        return f"from {self.source}"


def absolute_path(path: str, base: Path) -> Path:
    """`path` with a leading ~ expanded, made absolute against `base`."""
    return base / Path(path).expanduser()


def resolve_configuration(
    flag_value: str | None, environ: dict | None = None, cwd: Path | None = None
) -> ConfigurationFile:
    """The configuration file the SDK would use, and why (see the module's docstring)."""
    env_value = (os.environ if environ is None else environ).get(CONFIGURATION_ENV, "")
    if flag_value:
        return ConfigurationFile(absolute_path(flag_value, cwd or Path.cwd()), FROM_FLAG)
    if env_value:
        return ConfigurationFile(absolute_path(env_value, REPO_ROOT), FROM_ENV)
    return ConfigurationFile(REPO_ROOT / DEFAULT_FILENAME, FROM_DEFAULT)


def read_configuration(path: Path):
    """The JSON value in `path` (whether it is an object of strings is the connector's check).

    Raises:
        Failure: the file cannot be read, or holds no JSON (the message quotes no value).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        raise Failure(f"Cannot read the configuration {path}: {error.strerror}.") from None
    except ValueError as error:
        raise Failure(f"The configuration {path} is not readable JSON ({error}).") from None


def check_configuration(configuration, path: Path, hint: str = ""):
    """Refuse what the connector would refuse: connector.validate_configuration's verdict.

    The connector is imported from the repository, in this process only (the CLI's own
    process imports only what is deployed). Returns the connector's settings.

    Raises:
        Failure: "<path>: <the connector's message>", then `hint`.
    """
    connector = import_connector()
    try:
        return connector.validate_configuration(configuration)
    except ValueError as error:
        raise Failure(f"{path}: {error}{hint}") from None


def import_connector():
    """The repository's connector.py as a module, leaving no bytecode beside it."""
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        import connector
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return connector
