"""Small file-system helpers."""

import os
import re
import socket
import tempfile
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:  # this module is also loaded on its own (no package), e.g. by a checkpoint writer
    from ..config import CfgNode

# atomic_write's temporary files: ".<target>.<pid>@<host>.<8 random characters>.tmp" (mkstemp's
# random part), so that a later process can tell whether their writer may still be running.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]*)\.[a-z0-9_]{8}\.tmp$")


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64]


def _process_start_time() -> float:
    """When this process started (seconds since the epoch, rounded down: /proc/stat's boot time
    is whole seconds). 0 without /proc (then no file counts as older than this process)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return 0.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def atomic_write(path: str, write) -> None:
    """Call write(file object) on a temporary file next to `path`, then rename it over `path`.

    The temporary file is removed on any Python exception; one left by a kill (SIGKILL, power
    loss) is found and removed later by remove_stale_temporaries.
    """
    directory = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}.{os.getpid()}@{_host_tag()}."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def is_stale_temporary(path: str) -> bool:
    """Whether `path` is a temporary file of atomic_write whose writer is gone: on this host, its
    process is no longer alive; for this process's own id (an earlier process that had it, as in a
    restarted container) or another host, where that cannot be checked, it is older than this
    process. (Processes in another PID namespace with the same host name look dead: keep such
    runs out of each other's output folders.)"""
    match = _TEMP_NAME.match(os.path.basename(path))
    if match is None:
        return False
    pid = int(match.group("pid"))
    if match.group("host") == _host_tag() and pid != os.getpid():
        return not _pid_alive(pid)
    try:
        modified = os.stat(path).st_mtime
    except OSError:
        return False
    return modified < _process_start_time()


def remove_stale_temporaries(directory: str) -> List[str]:
    """Remove the temporary files that killed atomic_write calls left in `directory` (only those,
    see is_stale_temporary); returns their paths."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        path = os.path.join(directory, name)
        if is_stale_temporary(path):
            try:
                os.unlink(path)
            except OSError:  # another process removed it first, or it is not ours to remove
                continue
            removed.append(path)
    return removed


def mkdir(path: str) -> None:
    """os.makedirs(path, exist_ok=True) (the original's helper)."""
    if path:
        os.makedirs(path, exist_ok=True)


def save_config(cfg: "CfgNode", path: str) -> None:
    """Write the (merged) config as YAML, atomically; it loads back with cfg.merge_from_file."""
    atomic_write(path, lambda f: f.write(cfg.dump().encode()))


def save_labels(dataset_list, output_dir: str) -> None:
    """Write output_dir/labels.json: {"labels": class names by contiguous id, index 0 the background}
    of the first dataset that has categories, so that predictors can name what a model detects."""
    import json

    for dataset in dataset_list:
        names = getattr(dataset, "class_names", None)
        if names:
            payload = json.dumps({"labels": list(names)}).encode()
            atomic_write(os.path.join(output_dir, "labels.json"), lambda f: f.write(payload))  # noqa: B023 (called here)
            return
