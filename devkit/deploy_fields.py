"""deploy.sh's deploy fields, resolved as `fivetran deploy` resolves them.

The SDK's order (fivetran_connector_sdk_cli/resolution.py) is flag -> environment variable
-> options-file profile -> SDK default, and the options file is found and read here with
the SDK's own functions, so devkit/deploy.py can say where each field comes from and ask
only for what nothing gives. DEPLOY_FIELDS below is the one list of the fields, their flags
and variables. The SDK's options-file lookup starts in the current folder (./options.toml):
deploy.py runs in the caller's.
"""

import argparse
import os
from dataclasses import dataclass

# `fivetran deploy`'s fields in the order its resolver logs them, with their flag and
# environment variable (None where the SDK has none); package_id has no flag in deploy.sh.
DEPLOY_FIELDS = (
    ("destination", "--destination", "FIVETRAN_DESTINATION_NAME"),
    ("connection", "--connection", "FIVETRAN_CONNECTION_NAME"),
    ("python_version", "--python-version", "FIVETRAN_PYTHON_VERSION"),
    ("hybrid_deployment_agent_id", "--hybrid-deployment-agent-id", "FIVETRAN_HD_AGENT_ID"),
    ("proxy_id", "--proxy-id", None),
    ("proxy_host_config_key", "--proxy-host-config-key", None),
    ("package_id", None, None),
    ("naming", "--naming", "FIVETRAN_NAMING"),
)
# The SDK's words for where a field came from (resolution.py), and our notes on its defaults.
SDK_DEFAULT_SOURCE = "SDK built-in default"
NEW_CONNECTIONS_ONLY = "new connections only"
DEFAULT_AGENT_NOTE = f"the SDK looks up the destination's default agent_id; {NEW_CONNECTIONS_ONLY}"
NAMING_SUFFIX = "_NAMING"
# Where the options file was found: these tell it apart from ~/.fivetran's.
OPTIONS_FILE_ENV = "FIVETRAN_OPTIONS_FILE"
OPTIONS_FILENAME = "options.toml"
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class OptionsFile:
    """The options file the SDK would read, and how it found it."""

    path: str | None  # absolute; None when there is none
    # --options-file, FIVETRAN_OPTIONS_FILE, ./options.toml or "home" (~/.fivetran's); else
    # "none", or "unsupported" (the SDK reads options files on Python 3.11 and newer only)
    found_by: str


def find_options_file(flag_value: str | None) -> OptionsFile:
    """The options file `fivetran deploy` would read if started here, by its own lookup.

    Exits as the SDK does (with its message) when a file named by flag or variable is missing.
    """
    try:
        from fivetran_connector_sdk_cli import options_file
    except ImportError:  # an SDK from before options files
        return OptionsFile(None, "unsupported")
    if not options_file.is_options_file_supported():
        return OptionsFile(None, "unsupported")
    found = options_file.find_options_file(argparse.Namespace(options_file=flag_value))
    if not found:
        return OptionsFile(None, "none")
    return OptionsFile(os.path.abspath(found), options_file_origin(flag_value, found))


def options_file_origin(flag_value: str | None, found: str) -> str:
    """Which step of the SDK's lookup found the file (it tries them in this order)."""
    if flag_value:
        return "--options-file"
    if os.environ.get(OPTIONS_FILE_ENV):
        return OPTIONS_FILE_ENV
    if os.path.abspath(found) == os.path.abspath(OPTIONS_FILENAME):
        return f"./{OPTIONS_FILENAME}"
    return "home"


def select_profile(found: OptionsFile, profile_name: str | None) -> dict:
    """The profile's fields, validated by the SDK (which exits with its message on an
    api_key, an unknown field, a bad value, or a named profile that does not exist)."""
    if found.found_by == "unsupported":
        return {}
    from fivetran_connector_sdk_cli import options_file

    if found.path is None:
        if profile_name and profile_name != DEFAULT_PROFILE:
            options_file.select_profile({}, profile_name)
        return {}
    data = options_file.load_options_file(found.path)
    profile, _applied = options_file.select_profile(data, profile_name, None, found.path)
    return profile


def flag_or_env(flags: dict, flag: str | None, env_var: str | None) -> tuple:
    """(value, source) from the flag, else its environment variable, as the SDK reads them."""
    value = flags.get(flag) if flag else None
    if value and value.strip():
        return value, flag
    value = os.environ.get(env_var) if env_var else None
    return (value, env_var) if value and value.strip() else (None, None)


def resolve_field(field: str, flag: str, env_var: str, flags: dict, profile: dict, label: str):
    """(value, source) by the SDK's precedence: flag -> variable -> profile -> unresolved."""
    value, source = flag_or_env(flags, flag, env_var)
    if value:
        return value, source
    if profile.get(field):
        return str(profile[field]), f"options file, profile [{label}]"
    return None, None


def resolve_naming(flag: str, env_var: str, flags: dict, profile: dict, label: str) -> tuple:
    """naming as the SDK resolves it for a new connection (it ignores naming on updates)."""
    from fivetran_connector_sdk_cli.connector_helper import validate_naming

    value, source = flag_or_env(flags, flag, env_var)
    if value:
        return validate_naming(value) + NAMING_SUFFIX, source
    if profile.get("naming"):
        return validate_naming(profile["naming"]) + NAMING_SUFFIX, (
            f"options file, profile [{label}]; {NEW_CONNECTIONS_ONLY}"
        )
    return "FIVETRAN" + NAMING_SUFFIX, f"{SDK_DEFAULT_SOURCE}; {NEW_CONNECTIONS_ONLY}"


def resolve_deploy_fields(flags: dict, profile: dict, label: str) -> list:
    """[(field, value or None, source or None)] for every deploy field, in the SDK's order."""
    resolved = []
    for field, flag, env_var in DEPLOY_FIELDS:
        if field == "naming":
            value, source = resolve_naming(flag, env_var, flags, profile, label)
        else:
            value, source = resolve_field(field, flag, env_var, flags, profile, label)
        if not value and field == "python_version":
            value, source = sdk_default_python(), f"{SDK_DEFAULT_SOURCE}; {NEW_CONNECTIONS_ONLY}"
        if not value and field == "hybrid_deployment_agent_id":
            source = DEFAULT_AGENT_NOTE
        resolved.append((field, value, source))
    return resolved


def sdk_default_python() -> str:
    """The Python version the SDK gives a new connection when nothing names one."""
    from fivetran_connector_sdk_common.constants import DEFAULT_PYTHON_VERSION

    return DEFAULT_PYTHON_VERSION
