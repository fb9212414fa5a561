"""devkit/processes.py: devkit's one way to start other programs.

A supervised child never outlives the block that started it, whatever ends the block; a
stop is a TERM, then a KILL after a bounded wait; INT, TERM and HUP become an exception
once, so the clean-up after them runs to its end.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from devkit import processes
from devkit.processes import is_running, wait_until_gone

RUN_TIMEOUT_S = 30
# A child that prints its PID, then sleeps far longer than any test waits.
SLEEPER = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
# The same, deaf to TERM.
DEAF_SLEEPER = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SLEEPER


def python(code: str) -> list:
    return [sys.executable, "-c", code]


def test_run_command_captures_both_streams_together(tmp_path):
    code = "import sys; print('out'); print('err', file=sys.stderr)"
    result = processes.run_command(python(code), tmp_path, None, RUN_TIMEOUT_S)
    assert sorted(result.stdout.split()) == ["err", "out"]


def test_run_command_captures_the_streams_apart_when_asked(tmp_path):
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = processes.run_command(python(code), tmp_path, None, RUN_TIMEOUT_S, merge_stderr=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_run_command_stops_at_its_deadline(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run_command(python("import time; time.sleep(60)"), tmp_path, None, 0.5)


def test_supervised_child_is_stopped_when_the_block_fails(tmp_path):
    with (
        pytest.raises(RuntimeError),
        processes.supervised(python(SLEEPER), tmp_path, None) as child,
    ):
        pid = int(child.stdout.readline())
        raise RuntimeError("the caller failed")
    assert child.returncode == -signal.SIGTERM
    assert not is_running(pid)


def test_supervised_child_deaf_to_term_is_killed_after_the_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "STOP_GRACE_S", 0.5)
    with processes.supervised(python(DEAF_SLEEPER), tmp_path, None) as child:
        int(child.stdout.readline())
    assert child.returncode == -signal.SIGKILL


def test_supervised_own_session_takes_what_the_child_left_behind(tmp_path):
    # The child starts a grandchild in its group, prints the grandchild's PID and exits.
    code = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}], stdout=subprocess.PIPE)\n"
        "print(child.stdout.readline().decode().strip(), flush=True)\n"
    )
    with processes.supervised(python(code), tmp_path, None, own_session=True) as child:
        grandchild = int(child.stdout.readline())
        child.wait(RUN_TIMEOUT_S)
    assert wait_until_gone(grandchild, RUN_TIMEOUT_S)


def test_stream_output_shows_and_copies_the_childs_output(tmp_path, capfd):
    copy = tmp_path / "copy.log"
    code = "import sys; print('line one'); sys.stdout.write('no line break'); sys.exit(4)"
    with processes.supervised(python(code), tmp_path, None) as child, open(copy, "wb") as log:
        status = processes.stream_output(child, log)
    assert status == 4
    assert capfd.readouterr().out == "line one\nno line break"
    assert copy.read_text() == "line one\nno line break"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_becomes_stopped_with_the_shells_exit_code(signum, code):
    with pytest.raises(processes.Stopped) as stopped, processes.stop_on_signals():
        os.kill(os.getpid(), signum)
        time.sleep(RUN_TIMEOUT_S)  # interrupted by the signal
    assert stopped.value.exit_code == code


def test_second_signal_during_the_clean_up_is_ignored():
    cleaned_up = False
    with pytest.raises(processes.Stopped), processes.stop_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(RUN_TIMEOUT_S)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # a handler that raised again would end the clean-up here
            cleaned_up = True
    assert cleaned_up


def test_signal_handlers_are_restored_after_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with processes.stop_on_signals():
        pass
    assert signal.getsignal(signal.SIGTERM) is before
