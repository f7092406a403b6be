"""One training per output folder.

Two trainings started into the same OUTPUT_DIR would interleave metrics.json and overwrite each
other's checkpoints. The main process of a training holds an exclusive lock on OUTPUT_DIR/.train.lock
(fcntl.flock) for its whole life; the operating system releases it when the process ends in any way
(even kill -9), so a lock is never left behind. The file records who holds it, for the message a
second training gets.
"""

import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from typing import IO, Optional

LOCK_NAME = ".train.lock"
logger = logging.getLogger(__name__)


class OutputDirInUseError(RuntimeError):
    """Another training holds the output folder."""


class OutputDirLock:
    """Exclusive lock of a training on its output folder (`acquire` raises when it is taken)."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self._file: Optional[IO[str]] = None

    def acquire(self) -> "OutputDirLock":
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # A file system without locks (some network mounts): run, but unprotected.
                logger.warning(
                    "Cannot lock %s (%s): two trainings into this OUTPUT_DIR would not be stopped.", self.path, e
                )
                f.close()
                return self
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise OutputDirInUseError(
                f"OUTPUT_DIR {os.path.dirname(self.path)} is in use by another training ({_describe(holder)}). "
                f"Wait for it to finish or stop it, or give this run another OUTPUT_DIR."
            ) from None
        f.seek(0)
        f.truncate()
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv),
        }
        f.write(json.dumps(info) + "\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> "OutputDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on {info['host']}, started {info['started']}: {info['command']}"
    except (ValueError, KeyError, TypeError):
        return "its details could not be read"
