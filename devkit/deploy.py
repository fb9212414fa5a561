"""deploy.sh's work: deploy the connector with `fivetran deploy`, shipping only its runtime files.

The runtime files (devkit/runtime_files.py) are copied to a temporary folder and deployed from
there, so tests, the simulator, benchmarks and dev tools never ship and the SDK's dependency
scan never sees their imports. Deploy fields are resolved as the SDK resolves them (flag, then
its environment variable, then the options-file profile, then the SDK's default) by
devkit/deploy_fields.py, which also names the fields: the CLI is passed only what the user
decided here (flags, answers to the prompts), and only what nothing else gives is asked
for. Everything is checked before Fivetran is called.

The Fivetran API key reaches the CLI in its environment only, never on a command line, and
is never printed. deploy.sh finds the CLI (FIVETRAN_CLI_ENV) and the Python that has its SDK,
then runs this file by its path from the caller's folder, where the SDK looks for
./options.toml and where --config and --options-file paths are relative to.
"""

import argparse
import base64
import binascii
import contextlib
import getpass
import io
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if not __package__:
    # Run by path: sys.path[0] is devkit/; devkit and connector are imported from the
    # repository instead (the caller's folder never is on sys.path).
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from devkit import REPO_ROOT, arguments, configuration, console, deploy_fields, processes
from devkit.runtime_files import (
    RUNTIME_FILES,
    missing_runtime_files,
    stage_runtime_files,
    staged_files,
)

SCRIPT = "./deploy.sh"
DEFAULT_ACCOUNT = "MDS_SNOWFLAKE_HOL"
DEFAULT_DESTINATION = "NEW_SALES_ENG_HANDS_ON_LAB"
# Fivetran's rule for connection (destination schema) names, as the SDK checks it.
CONNECTION_NAME = re.compile(r"[_a-z][_a-z0-9]*")
DASHBOARD_URL = "https://fivetran.com/dashboard/connections"
# Name of the staged project folder (the SDK names its package after the folder).
STAGE_NAME = "hed_connector"
# The variable the SDK reads the Fivetran API key (base64 of key:secret) from.
API_KEY_ENV = "FIVETRAN_API_KEY"
# Where deploy.sh says which `fivetran` it found (else the one beside this Python).
FIVETRAN_CLI_ENV = "HED_FIVETRAN_CLI"
# How the SDK's output names the connection it deployed.
CONNECTION_ID = re.compile(r"[Cc]onnection [Ii][Dd]:\s*([A-Za-z0-9_]+)")
# How to give deploy the production HED key, after the connector's word on the file.
PRODUCTION_KEY_HINT = """
  Put the production HED API key in a configuration file kept out of git and pass it
  with --config PATH or FIVETRAN_CONFIGURATION. configuration.json in the repository
  holds placeholders only."""
# A field's source when the user typed it at a prompt here.
FROM_PROMPT = "prompt"
# What the dry run says when no options file is found.
NO_OPTIONS_FILE = """\
Options file:  none (looked for --options-file, FIVETRAN_OPTIONS_FILE, ./options.toml
               and ~/.fivetran/connector_sdk/options.toml; the SDK may create the last
               once, from your existing connections: its one-time migration)"""

DESCRIPTION = f"""\
Deploys connector.py to Fivetran as a Connector SDK connection (creates it, or updates
an existing one after confirmation). Only {" and ".join(RUNTIME_FILES)} are deployed.

Each deploy field comes from its flag, else the SDK's environment variable, else the
options-file profile, else the SDK's default, exactly as 'fivetran deploy' resolves it.
On a terminal, the script asks only for a destination, connection or key that none of
them gives; without one, a missing input is an error."""
EPILOG = f"""\
The Fivetran API key (base64 of key:secret) is read from {API_KEY_ENV}, or asked for
without echo. It is never printed, and is passed to the SDK in its environment, not on
the command line.
Exit codes: 0 deployed (or a dry run); 1 a check failed or an input is missing; 2 a bad
option; otherwise the exit code of 'fivetran deploy'."""


# ---------------------------------------------------------------------------------------
# Arguments


class PassThrough(argparse.Action):
    """Keep the option and its value, in command-line order, for the CLI."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.pass_through = [*namespace.pass_through, self.option_strings[0], values]


def parse_arguments(argv: list) -> argparse.Namespace:
    parser = arguments.ArgumentParser(f"{SCRIPT} [options]", DESCRIPTION, EPILOG)
    parser.set_defaults(pass_through=[])
    add = parser.add_argument
    value = arguments.value
    add(
        "--destination",
        metavar="NAME",
        type=value,
        help="Destination (group) name; env FIVETRAN_DESTINATION_NAME\n"
        f"(prompt default: {DEFAULT_DESTINATION}).",
    )
    add(
        "--connection",
        metavar="NAME",
        type=value,
        help="Connection name: a lowercase letter or _ first, then only a-z,\n"
        "0-9 and _; env FIVETRAN_CONNECTION_NAME.",
    )
    add(
        "--config",
        metavar="PATH",
        type=value,
        help="Configuration file with the production HED api_key; env\n"
        "FIVETRAN_CONFIGURATION (relative to the project folder, as the\n"
        "SDK reads it); default configuration.json (placeholders only).",
    )
    through = {"action": PassThrough, "type": value}
    add(
        "--python-version",
        metavar="V",
        **through,
        help="Python version Fivetran runs the connector with; env\n"
        "FIVETRAN_PYTHON_VERSION (default: the SDK's, for a new connection).",
    )
    add(
        "--hybrid-deployment-agent-id",
        metavar="ID",
        **through,
        help="Hybrid Deployment agent; env FIVETRAN_HD_AGENT_ID.",
    )
    add(
        "--proxy-id",
        metavar="ID",
        **through,
        help="Proxy Agent to route the connector's traffic through.",
    )
    add(
        "--proxy-host-config-key",
        metavar="KEY",
        **through,
        help="Configuration key that holds the host to proxy.",
    )
    add(
        "--naming",
        metavar="STRATEGY",
        **through,
        help="FIVETRAN or SOURCE (new connections only); env FIVETRAN_NAMING.",
    )
    add(
        "--options-file",
        metavar="PATH",
        type=value,
        help="SDK options file (TOML profiles, never an api_key); else\n"
        "FIVETRAN_OPTIONS_FILE, ./options.toml, then\n"
        "~/.fivetran/connector_sdk/options.toml (Python 3.11+).",
    )
    add(
        "--profile",
        metavar="NAME",
        **through,
        help="Profile of the options file (default: default).",
    )
    add(
        "--account",
        metavar="NAME",
        type=value,
        default=DEFAULT_ACCOUNT,
        help="Fivetran account, shown for reference only: the API key decides\n"
        f"the account (default: {DEFAULT_ACCOUNT}).",
    )
    add(
        "--yes",
        action="store_true",
        help="Answer yes to the SDK's prompts, e.g. to update an existing\n"
        "connection without asking.",
    )
    add(
        "--dry-run",
        action="store_true",
        help="Validate, then print each field with its source, the staged\n"
        "files and the command; call nothing.",
    )
    options = parser.parse(argv)
    if options.options_file:
        options.options_file = str(configuration.absolute_path(options.options_file, Path.cwd()))
    return options


# ---------------------------------------------------------------------------------------
# Checks that need no input


def check_configuration(options: argparse.Namespace) -> configuration.ConfigurationFile:
    """The configuration file to deploy: it exists and passes the connector's own check,
    which refuses an empty api_key and the repository's placeholder."""
    config = configuration.resolve_configuration(options.config)
    if not config.path.is_file():
        raise console.Failure(
            f"No configuration file at {config.path} ({config.describe()}; use --config PATH)."
        )
    configuration.check_configuration(
        configuration.read_configuration(config.path), config.path, PRODUCTION_KEY_HINT
    )
    console.ok(f"Configuration: {config.path} ({config.describe()})")
    return config


# ---------------------------------------------------------------------------------------
# Deploy fields: flag -> environment variable -> options-file profile -> SDK default


@dataclass
class Field:
    """A deploy field as resolved here (value None when nothing gives it)."""

    name: str
    value: str | None
    source: str | None
    flag: str | None
    env_var: str | None


@dataclass(frozen=True)
class Fields:
    """Every deploy field in the order the SDK logs them, and the options file they read."""

    fields: dict  # name -> Field
    options_file: deploy_fields.OptionsFile
    profile: str


def resolve_fields(options: argparse.Namespace) -> Fields:
    """The fields, resolved with the SDK's own options-file code. The SDK's messages (a
    profile it refuses, say) are diagnostics: they go to stderr."""
    from fivetran_connector_sdk_common import constants

    constants.EXECUTED_VIA_CLI = True  # the SDK's messages print as `fivetran deploy` prints them
    given = dict(zip(options.pass_through[::2], options.pass_through[1::2], strict=True))
    flags = {**given, "--destination": options.destination, "--connection": options.connection}
    profile = given.get("--profile")
    with contextlib.redirect_stdout(sys.stderr):
        found = deploy_fields.find_options_file(options.options_file)
        profile_fields = deploy_fields.select_profile(found, profile)
    label = profile or deploy_fields.DEFAULT_PROFILE
    resolved = deploy_fields.resolve_deploy_fields(flags, profile_fields, label)
    names = {name: (flag, env_var) for name, flag, env_var in deploy_fields.DEPLOY_FIELDS}
    fields = {name: Field(name, value, source, *names[name]) for name, value, source in resolved}
    return Fields(fields, found, label)


def ask(question: str, default: str, hint: str) -> str:
    """An answer typed on the terminal; Failure naming how to give it without one."""
    if not sys.stdin.isatty():
        raise console.Failure(f"Missing input: {hint} (no terminal to ask on).")
    prompt = f"{question} [{default}]: " if default else f"{question}: "
    try:
        answer = input(prompt).strip() or default
    except EOFError:
        answer = ""
    if not answer:
        raise console.Failure(f"Missing input: {hint}.")
    return answer


def ask_if_unresolved(fields: Fields, name: str, question: str, default: str) -> None:
    """A required field that no flag, variable or profile gives; the answer reaches the SDK
    as the field's flag."""
    field = fields.fields[name]
    if field.value:
        return
    hint = (
        f"pass {field.flag} NAME or set {field.env_var}, or set {name} in the options "
        f"profile [{fields.profile}]"
    )
    field.value, field.source = ask(question, default, hint), FROM_PROMPT


def check_connection_name(name: str) -> None:
    if not CONNECTION_NAME.fullmatch(name):
        raise console.Failure(
            f"Connection name '{name}' is not allowed by Fivetran: it must start with a\n"
            "  lowercase letter or _, then use only lowercase letters, digits and _ "
            "(e.g. hed_new_custom_connector)."
        )


def read_api_key() -> str:
    """The Fivetran API key: FIVETRAN_API_KEY, else asked for without echo."""
    api_key = os.environ.get(API_KEY_ENV, "")
    if not api_key:
        if not sys.stdin.isatty():
            raise console.Failure(
                f"Missing input: set {API_KEY_ENV} to your base64-encoded Fivetran key:secret "
                "(no terminal to ask on)."
            )
        try:
            api_key = getpass.getpass("Fivetran API key (base64 of key:secret, not echoed): ")
        except EOFError:
            api_key = ""
        if not api_key:
            raise console.Failure(f"Missing input: set {API_KEY_ENV}.")
    if not is_key_and_secret(api_key):
        raise console.Failure(
            "The Fivetran API key is not base64 of key:secret. In the Fivetran dashboard, copy "
            "the\n  base64-encoded API key (or run: printf %s 'KEY:SECRET' | base64)."
        )
    return api_key


def is_key_and_secret(api_key: str) -> bool:
    """Whether `api_key` is base64 of "key:secret" (the key itself is never shown)."""
    try:
        decoded = base64.b64decode(api_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded.strip(b":")


# ---------------------------------------------------------------------------------------
# What the CLI gets: only what was decided here; the SDK resolves the rest itself


def options_file_for_cli(fields: Fields, options: argparse.Namespace) -> str | None:
    """The CLI runs in the staging folder, where neither ./options.toml nor a relative path
    would be found, so every file but the SDK's home default goes to it by absolute path
    (and --options-file always, even where this Python cannot read it)."""
    found = fields.options_file
    if found.path and found.found_by != "home":
        return found.path
    return options.options_file


def deploy_arguments(stage: Path, config: Path, fields: Fields, options) -> list:
    """`fivetran deploy`'s arguments: a field's flag and value only when they were decided
    here (its flag or a prompt); a variable or profile the SDK reads and logs itself."""
    args = ["deploy", str(stage)]
    for name in ("destination", "connection"):
        field = fields.fields[name]
        if field.source in (field.flag, FROM_PROMPT):
            args += [field.flag, field.value]
    args += ["--configuration", str(config), *options.pass_through]
    options_file = options_file_for_cli(fields, options)
    if options_file:
        args += ["--options-file", options_file]
    if options.yes:
        args.append("--yes")
    elif not sys.stdin.isatty():
        # No one to answer the SDK's prompts: take their defaults (an existing connection is
        # then left unchanged and the SDK exits non-zero). Pass --yes to update it.
        args.append("--non-interactive")
    return args


def describe_source(source: str) -> str:
    """The SDK's wording ("provided via X", "using SDK built-in default")."""
    if source.startswith(deploy_fields.SDK_DEFAULT_SOURCE):
        return f"using {source}"
    return f"provided via {source}"


def print_options_file(fields: Fields) -> None:
    found, profile = fields.options_file, f"profile [{fields.profile}]"
    if found.found_by == "unsupported":
        print("Options file:  not read (the SDK reads options files on Python 3.11+)")
    elif found.found_by == "none":
        print(NO_OPTIONS_FILE)
    elif found.found_by == "home":
        print(f"Options file:  {found.path} (the SDK's default location), {profile}")
    else:
        print(f"Options file:  {found.path} (from {found.found_by}), {profile}")


def print_fields(fields: Fields, config: configuration.ConfigurationFile) -> None:
    print("Deploy fields, as 'fivetran deploy' resolves them:")
    for field in fields.fields.values():
        if field.value:
            print(f"  {field.name} = {field.value} ({describe_source(field.source)})")
        elif field.source:
            print(f"  {field.name}: {field.source}")
    if config.source == configuration.FROM_DEFAULT:
        print(f"  configuration = {config.path} ({config.describe()})")
    else:
        print(f"  configuration = {config.path} (provided via {config.source})")
    if fields.fields["package_id"].value:
        console.note(
            "package_id is set: the SDK deploys that existing package, not the staged files."
        )


def environment_sources(fields: Fields) -> str:
    """The SDK's environment variables this deploy relies on (each field's own, when it won)."""
    names = [
        field.source
        for field in fields.fields.values()
        if (field.source or "").startswith("FIVETRAN_")
    ]
    return " ".join([API_KEY_ENV, *names])


def print_dry_run(stage: Path, fivetran: str, args: list, fields: Fields) -> None:
    print()
    print("Dry run: nothing was called. The staged folder would hold:")
    for name in staged_files(stage):
        print(f"  {name}")
    print("and this command would run in it:")
    print(f"  {API_KEY_ENV}=**** {shlex.join([fivetran, *args])}")
    print(f"with these from the environment: {environment_sources(fields)}")


def run_deploy(stage: Path, fivetran: str, args: list, api_key: str) -> int:
    """`fivetran deploy` in the staged folder, its output shown as it comes; its exit code."""
    print()
    print("Deploying with fivetran deploy...")
    env = {**os.environ, API_KEY_ENV: api_key}
    output = io.BytesIO()
    # Not in a session of its own: the SDK may ask on this terminal (update the connection?).
    with processes.supervised([fivetran, *args], stage, env, stdin=None) as cli:
        status = processes.stream_output(cli, output)
    if status != 0:
        console.err(f"fivetran deploy failed with exit code {status} (see its output above).")
        return status
    found = CONNECTION_ID.findall(output.getvalue().decode("utf-8", errors="replace"))
    if found:
        console.ok(f"Deployed connection {found[-1]}")
        print(f"Dashboard: {DASHBOARD_URL}/{found[-1]}/status")
    else:
        console.ok("Deployed (the SDK's output above has the connection details)")
    return 0


def fivetran_cli() -> str:
    """The `fivetran` deploy.sh found, else the one beside this Python."""
    from devkit.sdk_cli import fivetran_executable

    return os.environ.get(FIVETRAN_CLI_ENV) or fivetran_executable()


def deploy(options: argparse.Namespace) -> int:
    missing = missing_runtime_files()
    if missing:
        raise console.Failure(f"Runtime file {missing[0]} is missing from {REPO_ROOT}.")
    config = check_configuration(options)
    fields = resolve_fields(options)
    ask_if_unresolved(fields, "destination", "Fivetran destination name", DEFAULT_DESTINATION)
    ask_if_unresolved(fields, "connection", "Connection name (e.g. hed_new_custom_connector)", "")
    check_connection_name(fields.fields["connection"].value)
    api_key = read_api_key()
    fivetran = fivetran_cli()
    with tempfile.TemporaryDirectory(prefix="hed-deploy.") as staging:
        stage = stage_runtime_files(Path(staging) / STAGE_NAME)
        args = deploy_arguments(stage, config.path, fields, options)
        print(f"Account:       {options.account} (for reference: the API key decides the account)")
        print_options_file(fields)
        print_fields(fields, config)
        print(f"Files:         {' '.join(RUNTIME_FILES)}")
        if options.dry_run:
            print_dry_run(stage, fivetran, args, fields)
            return 0
        return run_deploy(stage, fivetran, args, api_key)


def main(argv: list | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # in order with the CLI's output
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        with processes.stop_on_signals():
            return deploy(options)
    except console.Failure as failure:
        console.err(failure.message)
        return failure.exit_code
    except processes.Stopped as stopped:
        return stopped.exit_code
    except OSError as error:  # a file or folder the deploy needs cannot be made or read
        console.err(str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
