"""deploy.sh against a stub `fivetran` that records how it was called.

The stub writes its argv, the SDK's environment variables and the files of the project
folder it was given to a JSON-lines file, prints a fake "Connection ID" line and exits with
STUB_EXIT. PATH holds only the stub, a python3 and the system folders, so no real CLI runs;
deploy.sh reads options files with the SDK of the Python that runs the stub (this one).

Fields resolve as `fivetran deploy` resolves them: flag -> environment variable ->
options-file profile -> SDK default. deploy.sh passes the CLI only what was decided on its
own command line or at its prompts, so the SDK resolves the rest itself and logs the same
sources the dry run shows.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.processes import run_command
from devkit.terminal import run_on_terminal

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "deploy.sh"
RUNTIME_FILES = ["connector.py", "requirements.txt"]
FIVETRAN_KEY = base64.b64encode(b"fivetran-key-1234:fivetran-secret-5678").decode()
HED_KEY = "real-hed-api-key-9876"
SYSTEM_PATH = "/usr/bin:/bin"
RUN_TIMEOUT_S = 30

STUB = """#!{python}
import json, os, sys

args = sys.argv[1:]
project = args[1] if len(args) > 1 and not args[1].startswith("-") else os.getcwd()
files = sorted(
    os.path.relpath(os.path.join(folder, name), project)
    for folder, _, names in os.walk(project)
    for name in names
)
names = (
    "FIVETRAN_API_KEY",
    "FIVETRAN_DESTINATION_NAME",
    "FIVETRAN_CONNECTION_NAME",
    "FIVETRAN_CONFIGURATION",
    "FIVETRAN_PYTHON_VERSION",
)
record = {{
    "argv": args,
    "cwd": os.getcwd(),
    "project": project,
    "files": files,
    "env": {{name: os.environ.get(name) for name in names}},
}}
with open(os.environ["STUB_RECORD"], "a", encoding="utf-8") as handle:
    handle.write(json.dumps(record) + "\\n")
print("The connection 'x' has been created successfully.")
print("Connection ID: abc_def")
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
"""


@pytest.fixture
def project(tmp_path) -> Path:
    """The repository's deploy inputs plus dev-only folders that must never ship."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in (SCRIPT, "connector.py", "requirements.txt", "configuration.json"):
        shutil.copy2(REPO_ROOT / name, folder / name)
    shutil.copytree(
        REPO_ROOT / "devkit", folder / "devkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    (folder / "tests").mkdir()
    (folder / "tests" / "test_x.py").write_text("import pytest\n")
    (folder / "hed_simulator").mkdir()
    (folder / "hed_simulator" / "__init__.py").write_text("")
    (folder / "pyproject.toml").write_text("[tool.ruff]\n")
    return folder


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "production.json"
    path.write_text(json.dumps({"api_key": HED_KEY, "base_url": "https://hed.example.com"}))
    return path


@pytest.fixture
def record_file(tmp_path) -> Path:
    return tmp_path / "stub-calls.jsonl"


def make_bin(folder: Path, with_fivetran: bool) -> Path:
    """A PATH folder with python3 and, optionally, the stub fivetran."""
    folder.mkdir(exist_ok=True)
    (folder / "python3").symlink_to(sys.executable)
    if with_fivetran:
        stub = folder / "fivetran"
        stub.write_text(STUB.format(python=sys.executable))
        stub.chmod(0o755)
    return folder


@pytest.fixture
def env(tmp_path, record_file) -> dict:
    """No FIVETRAN_* or virtualenv from the caller; the stub first on PATH."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FIVETRAN_") and key not in ("VIRTUAL_ENV", "PATH")
    }
    bin_dir = make_bin(tmp_path / "bin", with_fivetran=True)
    base.update(
        {
            "PATH": f"{bin_dir}:{SYSTEM_PATH}",
            "HOME": str(tmp_path / "home"),
            "NO_COLOR": "1",
            "STUB_RECORD": str(record_file),
            "FIVETRAN_API_KEY": FIVETRAN_KEY,
        }
    )
    return base


def deploy(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    command = ["bash", project / SCRIPT, *args]
    return run_command(command, project, env, RUN_TIMEOUT_S, merge_stderr=False)


def stub_calls(record_file: Path) -> list:
    if not record_file.exists():
        return []
    return [json.loads(line) for line in record_file.read_text().splitlines()]


def full_args(config: Path, *extra: str) -> tuple:
    return (
        "--destination",
        "MY_DESTINATION",
        "--connection",
        "hed_test_connection",
        "--config",
        str(config),
        *extra,
    )


def test_deploy_calls_fivetran_deploy_with_the_given_inputs(project, env, config, record_file):
    result = deploy(project, env, *full_args(config, "--yes"))
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    assert call["argv"] == [
        "deploy",
        call["project"],
        "--destination",
        "MY_DESTINATION",
        "--connection",
        "hed_test_connection",
        "--configuration",
        str(config),
        "--yes",
    ]
    assert call["cwd"] == call["project"]


def test_deploy_stages_only_runtime_files(project, env, config, record_file):
    deploy(project, env, *full_args(config))
    (call,) = stub_calls(record_file)
    assert call["files"] == RUNTIME_FILES
    assert Path(call["project"]) != project


def test_deploy_passes_the_key_in_the_environment_not_argv(project, env, config, record_file):
    deploy(project, env, *full_args(config))
    (call,) = stub_calls(record_file)
    assert call["env"]["FIVETRAN_API_KEY"] == FIVETRAN_KEY
    assert FIVETRAN_KEY not in " ".join(call["argv"])


def test_deploy_never_prints_either_key(project, env, config):
    result = deploy(project, env, *full_args(config))
    output = result.stdout + result.stderr
    for secret in (FIVETRAN_KEY, "fivetran-secret-5678", HED_KEY):
        assert secret not in output


def test_deploy_shows_the_dashboard_link(project, env, config):
    result = deploy(project, env, *full_args(config))
    assert "Connection ID: abc_def" in result.stdout
    assert "https://fivetran.com/dashboard/connections/abc_def/status" in result.stdout


def test_deploy_exit_code_is_the_cli_exit_code(project, env, config):
    result = deploy(project, {**env, "STUB_EXIT": "3"}, *full_args(config))
    assert result.returncode == 3
    assert "fivetran deploy failed with exit code 3" in result.stderr


def test_deploy_removes_the_staging_folder(project, env, config, record_file):
    deploy(project, env, *full_args(config))
    (call,) = stub_calls(record_file)
    assert not Path(call["project"]).exists()


def test_deploy_without_terminal_or_yes_takes_the_sdk_defaults(project, env, config, record_file):
    deploy(project, env, *full_args(config))
    (call,) = stub_calls(record_file)
    assert "--non-interactive" in call["argv"]
    assert "--yes" not in call["argv"]


def test_deploy_passes_the_python_version(project, env, config, record_file):
    deploy(project, env, *full_args(config, "--python-version", "3.12"))
    (call,) = stub_calls(record_file)
    assert call["argv"][-3:-1] == ["--python-version", "3.12"]


def test_deploy_leaves_names_from_environment_variables_to_the_sdk(
    project, env, config, record_file
):
    names = {"FIVETRAN_DESTINATION_NAME": "ENV_DEST", "FIVETRAN_CONNECTION_NAME": "env_conn"}
    result = deploy(project, {**env, **names}, "--config", str(config))
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    assert "--destination" not in call["argv"]
    assert "--connection" not in call["argv"]
    assert call["env"]["FIVETRAN_DESTINATION_NAME"] == "ENV_DEST"
    assert call["env"]["FIVETRAN_CONNECTION_NAME"] == "env_conn"


def test_dry_run_calls_nothing(project, env, config, record_file):
    result = deploy(project, env, *full_args(config, "--dry-run"))
    assert result.returncode == 0, result.stderr
    assert stub_calls(record_file) == []


def test_dry_run_lists_staged_files_and_masks_the_key(project, env, config):
    result = deploy(project, env, *full_args(config, "--dry-run"))
    assert "  connector.py\n  requirements.txt\n" in result.stdout
    assert "FIVETRAN_API_KEY=****" in result.stdout
    assert "--connection hed_test_connection" in result.stdout
    assert FIVETRAN_KEY not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["HED_connection", "1hed", "hed-connection", "hed connection"])
def test_rejects_a_connection_name_fivetran_does_not_allow(
    project, env, config, record_file, name
):
    args = ("--destination", "D", "--connection", name, "--config", str(config))
    result = deploy(project, env, *args)
    assert result.returncode == 1
    assert "is not allowed by Fivetran" in result.stderr
    assert stub_calls(record_file) == []


def test_rejects_the_placeholder_api_key(project, env, record_file):
    result = deploy(project, env, "--destination", "D", "--connection", "hed")
    assert result.returncode == 1
    assert "'api_key' still holds the placeholder" in result.stderr
    assert stub_calls(record_file) == []


def test_refused_api_key_says_where_the_production_key_goes(project, env, record_file):
    result = deploy(project, env, "--destination", "D", "--connection", "hed")
    assert "kept out of git and pass it\n  with --config PATH" in result.stderr


def test_rejects_an_empty_api_key(project, env, tmp_path, record_file):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"api_key": " "}))
    result = deploy(
        project, env, "--destination", "D", "--connection", "hed", "--config", str(empty)
    )
    assert result.returncode == 1
    assert "'api_key' is required" in result.stderr
    assert stub_calls(record_file) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not readable JSON"),
        # The connector's own check, validate_configuration, in its words.
        ('{"api_key": "k", "page_size": 100}', "'page_size' must be a string"),
        ('["api_key"]', "must be a JSON object"),
    ],
)
def test_rejects_an_invalid_configuration(project, env, tmp_path, record_file, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = deploy(
        project, env, "--destination", "D", "--connection", "hed", "--config", str(bad)
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert stub_calls(record_file) == []


def test_fails_when_the_fivetran_cli_is_missing(project, env, config, tmp_path, record_file):
    no_cli = make_bin(tmp_path / "bin-without-cli", with_fivetran=False)
    result = deploy(project, {**env, "PATH": f"{no_cli}:{SYSTEM_PATH}"}, *full_args(config))
    assert result.returncode == 1
    assert "fivetran CLI was not found" in result.stderr
    assert stub_calls(record_file) == []


def test_help_works_without_the_fivetran_cli(project, env, tmp_path):
    no_cli = make_bin(tmp_path / "bin-without-cli", with_fivetran=False)
    result = deploy(project, {**env, "PATH": f"{no_cli}:{SYSTEM_PATH}"}, "--help")
    assert result.returncode == 0, result.stderr
    assert "--dry-run" in result.stdout


@pytest.mark.parametrize(
    ("missing", "hint"),
    [
        ("--destination", "pass --destination NAME or set FIVETRAN_DESTINATION_NAME"),
        ("--connection", "pass --connection NAME or set FIVETRAN_CONNECTION_NAME"),
        ("FIVETRAN_API_KEY", "set FIVETRAN_API_KEY"),
    ],
)
def test_missing_input_without_terminal_fails_fast(
    project, env, config, record_file, missing, hint
):
    args = list(full_args(config))
    if missing.startswith("--"):
        position = args.index(missing)
        del args[position : position + 2]
    else:
        env = {key: value for key, value in env.items() if key != missing}
    started = time.monotonic()
    result = deploy(project, env, *args)
    assert result.returncode == 1
    assert hint in result.stderr
    assert time.monotonic() - started < RUN_TIMEOUT_S / 2
    assert stub_calls(record_file) == []


def test_rejects_a_key_that_is_not_base64_of_key_and_secret(project, env, config, record_file):
    result = deploy(project, {**env, "FIVETRAN_API_KEY": "plain-key"}, *full_args(config))
    assert result.returncode == 1
    assert "not base64 of key:secret" in result.stderr
    assert "plain-key" not in result.stdout + result.stderr
    assert stub_calls(record_file) == []


def on_terminal(project: Path, env: dict, *args: str, answer: tuple = ()) -> tuple:
    """Run deploy.sh on a terminal; (code, screen). answer=(prompt, text) types `text` once
    `prompt` is on screen; a script left waiting for input ends after RUN_TIMEOUT_S."""
    command = ["bash", project / SCRIPT, *args]
    return run_on_terminal(command, project, env, RUN_TIMEOUT_S, answer=answer)


def test_key_prompt_does_not_echo(project, env, config, record_file):
    """On a terminal the key is asked for with echo off: it never appears on screen."""
    env = {key: value for key, value in env.items() if key != "FIVETRAN_API_KEY"}
    typed = (b"not echoed", FIVETRAN_KEY.encode())
    code, screen = on_terminal(project, env, "--account", "A", *full_args(config), answer=typed)
    assert code == 0, screen
    assert FIVETRAN_KEY not in screen
    (call,) = stub_calls(record_file)
    assert call["env"]["FIVETRAN_API_KEY"] == FIVETRAN_KEY


def test_help_exits_zero(project, env, record_file):
    result = deploy(project, env, "--help")
    assert result.returncode == 0
    assert "--dry-run" in result.stdout
    assert stub_calls(record_file) == []


def test_help_names_the_files_it_deploys(project, env):
    result = deploy(project, env, "--help")
    assert "Only connector.py and requirements.txt are deployed." in result.stdout


# ---------------------------------------------------------------------------------------
# Where each field comes from: flag -> environment variable -> options profile -> default

NAMES = ("--destination", "D", "--connection", "hed")
LAB_DESTINATION = "LAB_DESTINATION"
LAB_CONNECTION = "hed_lab_connection"
LAB_PYTHON = "3.12"
PROFILE_TOML = """
[default]
destination = "PROFILE_DESTINATION"
connection = "hed_profile_connection"

[staging]
destination = "STAGING_DESTINATION"
connection = "hed_staging_connection"
python_version = "3.11"
"""


@pytest.fixture
def lab_env(env, config) -> dict:
    """The hands-on lab's five variables, as its env file exports them."""
    return {
        **env,
        "FIVETRAN_DESTINATION_NAME": LAB_DESTINATION,
        "FIVETRAN_CONNECTION_NAME": LAB_CONNECTION,
        "FIVETRAN_CONFIGURATION": str(config),
        "FIVETRAN_PYTHON_VERSION": LAB_PYTHON,
    }


def write_options(folder: Path, text: str = PROFILE_TOML) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "options.toml"
    path.write_text(text)
    return path


def test_lab_variables_alone_resolve_every_field_in_a_dry_run(project, lab_env, config):
    result = deploy(project, lab_env, "--dry-run", "--yes")
    assert result.returncode == 0, result.stderr
    assert f"destination = {LAB_DESTINATION} (provided via FIVETRAN_DESTINATION_NAME)" in (
        result.stdout
    )
    assert f"connection = {LAB_CONNECTION} (provided via FIVETRAN_CONNECTION_NAME)" in (
        result.stdout
    )
    assert f"python_version = {LAB_PYTHON} (provided via FIVETRAN_PYTHON_VERSION)" in (
        result.stdout
    )
    assert f"configuration = {config} (provided via FIVETRAN_CONFIGURATION)" in result.stdout


def test_lab_dry_run_would_deploy_the_file_fivetran_configuration_names(
    project, lab_env, config, record_file
):
    result = deploy(project, lab_env, "--dry-run", "--yes")
    assert f"--configuration {config} --yes" in result.stdout
    assert stub_calls(record_file) == []


def test_lab_deploy_leaves_the_variables_to_the_sdk(project, lab_env, config, record_file):
    result = deploy(project, lab_env, "--yes")
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    assert call["argv"] == ["deploy", call["project"], "--configuration", str(config), "--yes"]
    assert call["env"]["FIVETRAN_DESTINATION_NAME"] == LAB_DESTINATION
    assert call["env"]["FIVETRAN_CONNECTION_NAME"] == LAB_CONNECTION
    assert call["env"]["FIVETRAN_PYTHON_VERSION"] == LAB_PYTHON


def test_flags_win_over_the_lab_variables(project, lab_env, record_file, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"api_key": HED_KEY}))
    args = ("--destination", "FLAG_DEST", "--python-version", "3.13", "--config", str(other))
    result = deploy(project, lab_env, *args, "--dry-run")
    assert "destination = FLAG_DEST (provided via --destination)" in result.stdout
    assert "python_version = 3.13 (provided via --python-version)" in result.stdout
    assert f"configuration = {other} (provided via --config)" in result.stdout


def test_fivetran_configuration_is_read_relative_to_the_project_folder(project, env, record_file):
    (project / "production.json").write_text(json.dumps({"api_key": HED_KEY}))
    names = {"FIVETRAN_CONFIGURATION": "production.json"}
    result = deploy(project, {**env, **names}, *NAMES)
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    assert call["argv"][call["argv"].index("--configuration") + 1] == str(
        project / "production.json"
    )


def test_fivetran_configuration_with_the_placeholder_key_is_refused(project, env, record_file):
    names = {"FIVETRAN_CONFIGURATION": str(project / "configuration.json")}
    result = deploy(project, {**env, **names}, *NAMES)
    assert result.returncode == 1
    assert f"{project / 'configuration.json'}: " in result.stderr
    assert "'api_key' still holds the placeholder" in result.stderr
    assert stub_calls(record_file) == []


def test_repo_options_profile_supplies_destination_and_connection(project, env, config):
    write_options(project)
    result = deploy(project, env, "--config", str(config), "--dry-run")
    assert result.returncode == 0, result.stderr
    source = "provided via options file, profile [default]"
    assert f"destination = PROFILE_DESTINATION ({source})" in result.stdout
    assert f"connection = hed_profile_connection ({source})" in result.stdout
    assert f"Options file:  {project / 'options.toml'} (from ./options.toml)" in result.stdout


def test_repo_options_file_reaches_the_cli_by_its_absolute_path(project, env, config, record_file):
    write_options(project)
    result = deploy(project, env, "--config", str(config))
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    assert call["cwd"] != str(project)
    position = call["argv"].index("--options-file")
    assert call["argv"][position + 1] == str(project / "options.toml")
    assert "--destination" not in call["argv"]
    assert "--connection" not in call["argv"]


def test_repo_options_profile_means_nothing_is_prompted(project, env, config, record_file):
    write_options(project)
    code, screen = on_terminal(project, env, "--config", str(config))
    assert code == 0, screen
    assert "destination name" not in screen
    assert "Connection name" not in screen
    assert len(stub_calls(record_file)) == 1


def test_options_file_and_profile_flags_pass_through(project, env, config, record_file, tmp_path):
    options = write_options(tmp_path / "elsewhere")
    relative = os.path.relpath(options, project)
    result = deploy(
        project, env, "--config", str(config), "--options-file", relative, "--profile", "staging"
    )
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    argv = call["argv"]
    assert argv[argv.index("--options-file") + 1] == str(options)
    assert argv[argv.index("--profile") + 1] == "staging"


def test_named_profile_is_the_source_in_the_dry_run(project, env, config, tmp_path):
    options = write_options(tmp_path / "elsewhere")
    args = ("--options-file", str(options), "--profile", "staging", "--dry-run")
    result = deploy(project, env, "--config", str(config), *args)
    assert result.returncode == 0, result.stderr
    source = "provided via options file, profile [staging]"
    assert f"destination = STAGING_DESTINATION ({source})" in result.stdout
    assert f"python_version = 3.11 ({source})" in result.stdout


def test_home_options_file_is_left_for_the_sdk_to_find(project, env, config, record_file):
    write_options(Path(env["HOME"]) / ".fivetran" / "connector_sdk")
    result = deploy(project, env, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "(the SDK's default location)" in result.stdout
    (call,) = stub_calls(record_file)
    assert "--options-file" not in call["argv"]
    assert "--destination" not in call["argv"]


def test_fivetran_options_file_reaches_the_cli_by_its_absolute_path(
    project, env, config, record_file, tmp_path
):
    options = write_options(tmp_path / "elsewhere")
    names = {"FIVETRAN_OPTIONS_FILE": os.path.relpath(options, project)}
    result = deploy(project, {**env, **names}, "--config", str(config))
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    assert call["argv"][call["argv"].index("--options-file") + 1] == str(options)


def test_sdk_options_pass_through_unchanged(project, env, config, record_file, tmp_path):
    options = write_options(tmp_path / "elsewhere")
    through = [
        "--python-version",
        "3.12",
        "--hybrid-deployment-agent-id",
        "agent_one",
        "--proxy-id",
        "proxy_one",
        "--proxy-host-config-key",
        "base_url",
        "--naming",
        "source",
        "--profile",
        "staging",
    ]
    result = deploy(
        project, env, "--config", str(config), "--options-file", str(options), *through
    )
    assert result.returncode == 0, result.stderr
    (call,) = stub_calls(record_file)
    start = call["argv"].index("--python-version")
    assert call["argv"][start : start + len(through)] == through


def test_unknown_profile_is_refused_before_calling_fivetran(project, env, config, record_file):
    write_options(project)
    result = deploy(project, env, "--config", str(config), "--profile", "nope")
    assert result.returncode == 1
    assert "profile 'nope' not found" in result.stderr
    assert stub_calls(record_file) == []


def test_options_profile_holding_an_api_key_is_refused(project, env, config, record_file):
    write_options(project, '[default]\ndestination = "D"\napi_key = "kept-out"\n')
    result = deploy(project, env, "--config", str(config), "--connection", "hed")
    assert result.returncode == 1
    assert "api_key must never be stored in the options file" in result.stderr
    assert stub_calls(record_file) == []


def test_missing_destination_hint_names_the_options_profile(project, env, config):
    result = deploy(project, env, "--connection", "hed", "--config", str(config))
    assert result.returncode == 1
    assert "or set destination in the options profile [default]" in result.stderr
