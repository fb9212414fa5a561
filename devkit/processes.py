"""Starting other programs: devkit's one helper for it, which the scripts' tests use too.

`run_command` runs a command to its end within a deadline and captures what it printed.
`supervised` starts a long-running child (a sync, a deploy, a script under test) that is
stopped whatever ends the block: a result, an error, or a signal that `stop_on_signals` turned
into `Stopped`. Stopping is TERM, then KILL if the child has not gone after STOP_GRACE_S;
`stream_output` copies the child's output through as it comes.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# Seconds a child has after a TERM before it is killed: the SDK's CLI exits within a tenth
# of a second of a TERM, so only a hung child ever waits this long.
STOP_GRACE_S = 5.0
# Signals that ask a script to stop, and the exit code each gives (128 + its number, as a
# shell reports a process it ended): INT is Ctrl-C, TERM a CI timeout or `kill`, HUP a
# closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SIGNAL_EXIT_BASE = 128
# How often wait_until_gone looks again.
GONE_POLL_S = 0.05
# How much of a child's output is copied at a time: a prompt without a line break shows at once.
COPY_CHUNK_BYTES = 65536


def run_command(
    command: list,
    cwd: Path,
    env: dict,
    timeout: float,
    *,
    merge_stderr: bool = True,
    stdin=subprocess.DEVNULL,
) -> subprocess.CompletedProcess:
    """Run a command with no input (unless `stdin` says otherwise) to its end, as text.

    stdout and stderr are captured together in `stdout`, or apart with merge_stderr=False.
    Raises subprocess.TimeoutExpired (after killing it) when it runs past `timeout` seconds.
    """
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def supervised(
    command: list,
    cwd: Path,
    env: dict,
    *,
    stdin=subprocess.DEVNULL,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    own_session: bool = False,
    text: bool = False,
) -> Iterator[subprocess.Popen]:
    """A child process, stopped when the block ends however it ends (see stop).

    With stdout=PIPE (the default) its output, stderr included, is read from
    process.stdout (bytes, unless text=True). own_session starts it in a session and process
    group of its own, so a Ctrl-C at the terminal reaches only the caller, which decides how
    the child stops; a child that must prompt on the terminal stays in the caller's.
    """
    process = subprocess.Popen(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=own_session,
        text=text,
    )
    try:
        yield process
    finally:
        stop(process, group=own_session)
        if process.stdout is not None:
            process.stdout.close()


def stop(process: subprocess.Popen, group: bool = False) -> int:
    """End `process` if it still runs: TERM, then KILL after STOP_GRACE_S; its exit status.

    group=True signals its whole process group (it must lead one: own_session), so what it
    started goes too.
    """
    if process.poll() is None:
        send(process, signal.SIGTERM, group)
        try:
            return process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            send(process, signal.SIGKILL, group)
    elif group:
        # The leader is gone; anything it left in its group is not.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait(STOP_GRACE_S)


def send(process: subprocess.Popen, signum: int, group: bool = False) -> None:
    """Send `signum` to `process`, or to its process group; nothing if it is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


def stream_output(process: subprocess.Popen, copy: BinaryIO | None = None) -> int:
    """Show the child's output (process.stdout, bytes) as it comes, also writing it to `copy`;
    the child's exit status once its output ends."""
    sys.stdout.flush()
    while chunk := os.read(process.stdout.fileno(), COPY_CHUNK_BYTES):
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        if copy is not None:
            copy.write(chunk)
    return process.wait()


class Stopped(Exception):  # noqa: N818 - a stop request, not an error
    """A signal asked this process to stop; exit_code is the one a shell would report."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = SIGNAL_EXIT_BASE + signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, INT, TERM or HUP raises Stopped, once: a second signal while the
    clean-up that follows runs is ignored, so that bounded clean-up always finishes."""
    stopping = False

    def request_stop(signum: int, _frame) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stopped(signum)

    previous = {signum: signal.signal(signum, request_stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def is_running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie (ended, not yet reaped) counts as gone.
    Reads Linux's /proc, as the tests that check for leftover processes do."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def wait_until_gone(pid: int, seconds: float) -> bool:
    """Whether `pid` is gone (see is_running) within `seconds`."""
    deadline = time.monotonic() + seconds
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(GONE_POLL_S)
    return not is_running(pid)
