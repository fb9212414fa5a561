"""devkit/common.sh: the shell helpers of deploy.sh, debug_and_reset.sh and student_success.sh.

Each test sources the file in a fresh bash and runs one helper, as the scripts do.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.processes import run_command
from devkit.terminal import run_on_terminal

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMON = REPO_ROOT / "devkit" / "common.sh"
SCRIPTS = ("deploy.sh", "debug_and_reset.sh")
RUN_TIMEOUT_S = 30
# NO_COLOR empty counts as unset: colour is then up to each stream being a terminal.
COLOUR_ALLOWED = {"NO_COLOR": ""}


def bash(snippet: str, env: dict | None = None, cwd: Path = REPO_ROOT):
    """Run `snippet` after sourcing common.sh with a usage function defined."""
    script = f'usage() {{ echo "usage text"; }}\nsource {str(COMMON)!r}\n'
    environment = {**os.environ, "NO_COLOR": "", **(env or {})}
    return run_command(
        ["bash", "-c", script + snippet], cwd, environment, RUN_TIMEOUT_S, merge_stderr=False
    )


def with_terminal(command: list, env: dict, file: Path | None = None, stream: str = "") -> str:
    """Run `command` on a terminal, except `stream` ("stdout" or "stderr") written to `file`;
    what the terminal showed."""
    environment = {**os.environ, **env}
    return run_on_terminal(
        command, REPO_ROOT, environment, RUN_TIMEOUT_S, file=file, stream=stream
    )[1]


def on_terminal(snippet: str, env: dict, file: Path | None = None, stream: str = "") -> str:
    """What `snippet` shows on a terminal (see with_terminal), after sourcing common.sh."""
    return with_terminal(["bash", "-c", f"source {str(COMMON)!r}\n{snippet}"], env, file, stream)


def test_messages_are_plain_when_stdout_is_not_a_terminal():
    result = bash("ok done; note careful")
    assert result.stdout == "[ok] done\n[note] careful\n"


def test_messages_are_coloured_on_a_terminal():
    shown = on_terminal("ok done; err failed", COLOUR_ALLOWED)
    assert "\x1b[32m[ok]\x1b[0m done" in shown
    assert "\x1b[31m[error]\x1b[0m failed" in shown


def test_no_color_turns_colour_off_on_a_terminal():
    assert on_terminal("ok done", {"NO_COLOR": "1"}).strip() == "[ok] done"


def test_errors_written_to_a_file_are_plain_while_stdout_is_a_terminal(tmp_path):
    errors = tmp_path / "err.txt"
    shown = on_terminal("ok done; err failed", COLOUR_ALLOWED, errors, "stderr")
    assert "\x1b[32m[ok]\x1b[0m done" in shown
    assert errors.read_text() == "[error] failed\n"


def test_messages_written_to_a_file_are_plain_while_stderr_is_a_terminal(tmp_path):
    messages = tmp_path / "out.txt"
    shown = on_terminal("ok done; note careful; err failed", COLOUR_ALLOWED, messages, "stdout")
    assert messages.read_text() == "[ok] done\n[note] careful\n"
    assert "\x1b[31m[error]\x1b[0m failed" in shown


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_errors_in_a_file_hold_no_colour_codes_while_stdout_is_a_terminal(script, tmp_path):
    # `./deploy.sh --nope 2>err.txt` typed at a terminal.
    errors = tmp_path / "err.txt"
    with_terminal(["bash", REPO_ROOT / script, "--nope"], COLOUR_ALLOWED, errors, "stderr")
    text = errors.read_text()
    assert "\x1b" not in text
    assert "[error] Unknown option: --nope" in text


def test_die_prints_to_stderr_and_exits_1():
    result = bash("die 'went wrong'; echo not reached")
    assert result.returncode == 1
    assert result.stderr == "[error] went wrong\n"
    assert result.stdout == ""


def test_need_value_without_a_value_exits_2_with_usage():
    result = bash("need_value --config")
    assert result.returncode == 2
    assert result.stderr == "[error] --config needs a value.\nusage text\n"


def test_need_value_with_a_value_returns():
    assert bash("need_value --config x && echo fine").stdout == "fine\n"


def test_reject_option_exits_2_with_usage():
    result = bash("reject_option --nope")
    assert result.returncode == 2
    assert result.stderr == "[error] Unknown option: --nope\nusage text\n"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/abs/x.json", "/abs/x.json"), ("rel/x.json", "/base/rel/x.json"), ("~/x", "HOME/x")],
)
def test_absolute_path(path, expected):
    result = bash(f"absolute_path {path!r} /base", env={"HOME": "/home/u"})
    assert result.stdout.strip() == expected.replace("HOME", "/home/u")


@pytest.mark.parametrize("arguments", [["--help"], ["--local", "-h"]])
def test_asks_for_help_finds_a_help_option(arguments):
    assert bash(f"asks_for_help {' '.join(arguments)} && echo yes").stdout == "yes\n"


def test_asks_for_help_ignores_other_options():
    assert bash("asks_for_help --local --helpful || echo no").stdout == "no\n"


def write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def found_tools(venv: Path, env: dict) -> subprocess.CompletedProcess:
    return bash(f'find_sdk_tools {str(venv)!r} && echo "$PY" && echo "$FT"', env=env)


def test_tools_come_from_the_given_venv_first(tmp_path):
    venv = tmp_path / "venv"
    write_executable(venv / "bin" / "python", "#!/bin/sh\n")
    write_executable(venv / "bin" / "fivetran", "#!/bin/sh\n")
    result = found_tools(venv, {"VIRTUAL_ENV": ""})
    assert result.stdout.split() == [str(venv / "bin" / "python"), str(venv / "bin" / "fivetran")]


def test_tools_come_from_the_active_virtualenv_next(tmp_path):
    active = tmp_path / "active"
    write_executable(active / "bin" / "python", "#!/bin/sh\n")
    write_executable(active / "bin" / "fivetran", "#!/bin/sh\n")
    result = found_tools(tmp_path / "none", {"VIRTUAL_ENV": str(active)})
    assert result.stdout.split()[1] == str(active / "bin" / "fivetran")


def test_tools_on_path_use_the_python_that_runs_fivetran(tmp_path):
    # python3 on PATH lacks the SDK; the interpreter on the CLI's #! line has it.
    bin_dir = tmp_path / "bin"
    write_executable(bin_dir / "python3", "#!/bin/sh\nexit 1\n")
    fivetran = write_executable(bin_dir / "fivetran", f"#!{sys.executable}\n")
    env = {"VIRTUAL_ENV": "", "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = found_tools(tmp_path / "none", env)
    assert result.stdout.split() == [sys.executable, str(fivetran)]


def test_a_python_without_the_sdk_is_passed_over(tmp_path):
    # The CLI's own interpreter, started without its site-packages, has no SDK to run it.
    bin_dir = tmp_path / "bin"
    bare = write_executable(bin_dir / "bare-python", f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    write_executable(bin_dir / "fivetran", f"#!{bare}\n")
    write_executable(bin_dir / "python3", f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    env = {"VIRTUAL_ENV": "", "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = found_tools(tmp_path / "none", env)
    assert result.stdout.split()[0] == "python3"


def test_no_fivetran_on_path_finds_no_tools(tmp_path):
    env = {"VIRTUAL_ENV": "", "PATH": "/usr/bin:/bin"}
    result = found_tools(tmp_path / "none", env)
    assert result.returncode == 1


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_source_the_shared_helpers_instead_of_defining_them(script):
    text = (REPO_ROOT / script).read_text()
    assert 'source "$REPO/devkit/common.sh"' in text
    for helper in ("ok", "note", "err", "die", "need_value", "use_venv"):
        assert f"\n{helper}() " not in text
