"""One training per OUTPUT_DIR: a second lock fails naming the holder; the lock dies with its process."""

import os
import signal
import subprocess
import sys

import pytest

from maskrcnn_benchmark.utils.output_lock import OutputDirInUseError, OutputDirLock

HOLD = """
import sys, time
from maskrcnn_benchmark.utils.output_lock import OutputDirLock
lock = OutputDirLock(sys.argv[1]).acquire()  # held while the process lives
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_lock_on_the_same_folder_fails_and_names_the_first(tmp_path):
    with OutputDirLock(str(tmp_path)):
        with pytest.raises(OutputDirInUseError, match=rf"in use by another training \(pid {os.getpid()} on"):
            OutputDirLock(str(tmp_path)).acquire()
    # released: a new training may take it
    OutputDirLock(str(tmp_path)).acquire().release()


def test_the_lock_of_a_killed_process_is_released(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(OutputDirInUseError, match=f"pid {proc.pid}"):
            OutputDirLock(str(tmp_path)).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    OutputDirLock(str(tmp_path)).acquire().release()  # kill -9 leaves no lock behind


def test_a_file_system_without_locks_warns_and_runs_unprotected(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING"):
        OutputDirLock(str(tmp_path)).acquire().release()
    assert "would not be stopped" in caplog.text
