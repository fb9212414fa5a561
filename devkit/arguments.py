"""Command lines of the scripts: argparse, refusing bad arguments as the shell scripts do.

A refused command line prints an [error] naming the option, then the help, and exits 2;
options are never abbreviated; help texts keep their own line breaks.
"""

import argparse
import sys

from devkit import console

# What argparse says of an option given without its value, and what `value` says of an
# empty one: both are reported as "--config needs a value."
MISSING_VALUE = "expected one argument"
EMPTY_VALUE = "needs a value"
# The column option help starts in (longer options put theirs on the next line).
HELP_COLUMN = 19


class HelpFormatter(argparse.RawTextHelpFormatter):
    """The help as the shell scripts wrote it: "Usage:", "Options:", their own line breaks."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=HELP_COLUMN)

    def add_usage(self, usage, actions, groups, prefix=None) -> None:
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the scripts' way of refusing arguments."""

    def __init__(self, usage: str, description: str, epilog: str) -> None:
        super().__init__(
            usage=usage,
            description=description,
            epilog=epilog,
            formatter_class=HelpFormatter,
            allow_abbrev=False,
            exit_on_error=False,
            add_help=False,
        )
        self._optionals.title = "Options"
        self.add_argument("-h", "--help", action="help", help="Show this help.")

    def error(self, message: str):
        console.err(message)
        self.print_help(sys.stderr)
        sys.exit(2)

    def parse(self, argv: list) -> argparse.Namespace:
        """The options in `argv`; an option without its value, or one the script does not
        know, is refused (see error)."""
        try:
            options, unknown = self.parse_known_args(argv)
        except argparse.ArgumentError as error:
            if error.message in (MISSING_VALUE, EMPTY_VALUE):
                self.error(f"{error.argument_name} needs a value.")
            self.error(f"{error.argument_name}: {error.message}")
        if unknown:
            self.error(f"Unknown option: {unknown[0]}")
        return options


def value(text: str) -> str:
    """An option's value: anything but empty."""
    if not text:
        raise argparse.ArgumentTypeError(EMPTY_VALUE)
    return text
