"""What the scripts print, and how a step fails.

[ok] and [note] go to stdout, [error] to stderr; each stream is coloured only when it is a
terminal and NO_COLOR is unset or empty, so a log file or a pipe never holds colour codes.
The same rules as devkit/common.sh, which the shell scripts use.
"""

import os
import sys
from typing import TextIO

BOLD = "\033[1m"
GREEN = "\033[32m"
YELLOW = "\033[33m"
RED = "\033[31m"
RESET = "\033[0m"


class Failure(Exception):  # noqa: N818 - a step that failed, reported as it is
    """A step cannot go on: `message` is printed as an [error], the script exits exit_code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def wants_colour(stream: TextIO) -> bool:
    """Whether text written to `stream` is coloured."""
    is_terminal = getattr(stream, "isatty", None)
    return bool(is_terminal and is_terminal()) and not os.environ.get("NO_COLOR")


def paint(text: str, colour: str, stream: TextIO) -> str:
    return f"{colour}{text}{RESET}" if wants_colour(stream) else text


def ok(message: str) -> None:
    print(f"{paint('[ok]', GREEN, sys.stdout)} {message}", flush=True)


def note(message: str) -> None:
    print(f"{paint('[note]', YELLOW, sys.stdout)} {message}", flush=True)


def err(message: str) -> None:
    print(f"{paint('[error]', RED, sys.stderr)} {message}", file=sys.stderr, flush=True)


def heading(text: str) -> None:
    """A bold line on stdout (a step's header, a script's title)."""
    print(paint(text, BOLD, sys.stdout), flush=True)
