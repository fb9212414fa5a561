"""devkit/console.py and devkit/arguments.py: what the scripts' Python prints, and how it
refuses a command line.

Colour only where a person looks: on a terminal, per stream, never with NO_COLOR; a log
file or pipe holds plain text. A bad command line gets an [error] naming the option, the
help, and exit 2, as the shell scripts' own helpers do.
"""

import os
import sys
from pathlib import Path

import pytest

from devkit import REPO_ROOT, console
from devkit import debug_and_reset as debug_script
from devkit import deploy as deploy_script
from devkit.terminal import run_on_terminal

RUN_TIMEOUT_S = 30
# NO_COLOR empty counts as unset: colour is then up to each stream being a terminal.
COLOUR_ALLOWED = {"NO_COLOR": ""}
MESSAGES = "from devkit import console; console.ok('done'); console.err('failed')"


def shown(env: dict, file: Path | None = None, stream: str = "") -> str:
    """What MESSAGES shows on a terminal, `stream` ("stdout" or "stderr") going to `file`."""
    command = [sys.executable, "-c", MESSAGES]
    environment = {**os.environ, **env}
    return run_on_terminal(
        command, REPO_ROOT, environment, RUN_TIMEOUT_S, file=file, stream=stream
    )[1]


def test_messages_are_plain_when_not_on_a_terminal(capsys):
    console.ok("done")
    console.note("careful")
    console.err("failed")
    printed = capsys.readouterr()
    assert printed.out == "[ok] done\n[note] careful\n"
    assert printed.err == "[error] failed\n"


def test_messages_are_coloured_on_a_terminal():
    screen = shown(COLOUR_ALLOWED)
    assert "\x1b[32m[ok]\x1b[0m done" in screen
    assert "\x1b[31m[error]\x1b[0m failed" in screen


def test_no_color_turns_colour_off_on_a_terminal():
    assert "\x1b" not in shown({"NO_COLOR": "1"})


def test_errors_written_to_a_file_are_plain_while_stdout_is_a_terminal(tmp_path):
    errors = tmp_path / "err.txt"
    screen = shown(COLOUR_ALLOWED, errors, "stderr")
    assert "\x1b[32m[ok]\x1b[0m done" in screen
    assert errors.read_text() == "[error] failed\n"


def test_messages_written_to_a_file_are_plain_while_stderr_is_a_terminal(tmp_path):
    messages = tmp_path / "out.txt"
    screen = shown(COLOUR_ALLOWED, messages, "stdout")
    assert messages.read_text() == "[ok] done\n"
    assert "\x1b[31m[error]\x1b[0m failed" in screen


# ---------------------------------------------------------------------------------------
# Command lines

SCRIPTS = {
    "debug_and_reset": debug_script.parse_arguments,
    "deploy": deploy_script.parse_arguments,
}


def refused(capsys, parse, *argv: str) -> str:
    """What `parse` prints on stderr as it exits 2 for `argv`."""
    with pytest.raises(SystemExit) as stopped:
        parse(list(argv))
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_option_is_refused_with_the_help(capsys, script):
    errors = refused(capsys, SCRIPTS[script], "--nope")
    assert errors.startswith("[error] Unknown option: --nope\n")
    assert "--config PATH" in errors


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("argv", [["--config"], ["--config", ""]])
def test_option_without_its_value_is_refused(capsys, script, argv):
    assert refused(capsys, SCRIPTS[script], *argv).startswith("[error] --config needs a value.\n")


@pytest.mark.parametrize("script", SCRIPTS)
def test_options_are_never_abbreviated(capsys, script):
    assert "Unknown option: --conf" in refused(capsys, SCRIPTS[script], "--conf", "x.json")


@pytest.mark.parametrize(("option", "value"), [("--seed", "x"), ("--records", "-1")])
def test_debug_refuses_a_count_that_is_not_a_whole_number(option, value):
    with pytest.raises(console.Failure) as failed:
        debug_script.parse_arguments([option, value])
    assert f"{option} must be a whole number" in failed.value.message


def test_deploy_passes_sdk_options_through_in_their_order():
    argv = ["--naming", "source", "--python-version", "3.12", "--profile", "staging"]
    assert deploy_script.parse_arguments(argv).pass_through == argv


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_reads_as_the_shell_scripts_wrote_it(capsys, script):
    with pytest.raises(SystemExit) as stopped:
        SCRIPTS[script](["--help"])
    shown = capsys.readouterr().out
    assert stopped.value.code == 0
    assert shown.startswith(f"Usage: ./{script}.sh [options]\n")
    assert "\nOptions:\n  -h, --help" in shown
