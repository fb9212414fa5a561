"""A command run on a pseudo-terminal, as a user at a terminal runs it (for the tests).

What is on screen decides what the scripts do there: colours on a terminal only, prompts
only where someone can answer, the key asked for without echo.
"""

import os
import pty
import select
import time
from pathlib import Path

from devkit.processes import supervised

# Seconds between the prompt showing and the answer being typed: a prompt switches echo off
# before it shows, and the answer must not arrive before the prompt reads.
TYPING_DELAY_S = 0.2
READ_BYTES = 4096


def run_on_terminal(
    command: list,
    cwd: Path,
    env: dict,
    timeout: float,
    *,
    answer: tuple = (),
    file: Path | None = None,
    stream: str = "",
) -> tuple:
    """Run `command` with a terminal as stdin, stdout and stderr; (exit code, screen).

    stream ("stdout" or "stderr") goes to `file` instead of the screen. answer=(prompt,
    text) types `text` once `prompt` (bytes) is on screen; nothing else is typed, so a
    command left waiting for input ends the run after `timeout` seconds of silence.
    """
    main, secondary = pty.openpty()
    streams = {"stdin": secondary, "stdout": secondary, "stderr": secondary}
    screen = b""
    try:
        with open(file or os.devnull, "wb") as redirected:
            if stream:
                streams[stream] = redirected
            with supervised(command, cwd, env, **streams, own_session=True) as process:
                os.close(secondary)
                screen = read_screen(main, timeout, answer)
                process.wait(timeout=timeout)
    finally:
        os.close(main)
    return process.returncode, screen.decode(errors="replace")


def read_screen(main: int, timeout: float, answer: tuple) -> bytes:
    """What the terminal shows until it closes or stays silent for `timeout` seconds."""
    screen = b""
    while True:
        ready, _, _ = select.select([main], [], [], timeout)
        if not ready:
            return screen  # waiting for an answer that never comes
        try:
            chunk = os.read(main, READ_BYTES)
        except OSError:  # the terminal closes when the command exits
            return screen
        if not chunk:
            return screen
        screen += chunk
        if answer and answer[0] in screen:
            time.sleep(TYPING_DELAY_S)
            os.write(main, answer[1] + b"\n")
            answer = ()
