"""Why a weights file cannot be used: one exception type, and what the file looks like instead.

Every failure to read a checkpoint (.pth) or a Detectron weights pickle (.pkl) becomes a
`CheckpointFileError` naming the file and the reason. Its subclasses are also the built-in types
older callers caught (FileNotFoundError, pickle.UnpicklingError).
"""

import codecs
import os
import pickle
import zipfile


class CheckpointFileError(RuntimeError):
    """A weights file that cannot be used: missing, unreadable, not a checkpoint, corrupt."""


class CheckpointNotFoundError(CheckpointFileError, FileNotFoundError):
    """The weights file does not exist."""


class UnsafeCheckpointError(CheckpointFileError, pickle.UnpicklingError):
    """The file pickles Python objects that are not loaded by default (unpickling them can run code)."""


def check_weights_file(path: str) -> None:
    """Raise CheckpointFileError unless `path` is a non-empty regular file that can be read."""
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f"checkpoint file not found: {path}")
    if os.path.isdir(path):
        raise CheckpointFileError(f"{path} is a directory, not a checkpoint file")
    if not os.path.isfile(path):
        raise CheckpointFileError(f"{path} is not a regular file (a device or a pipe?), not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointFileError(f"{path} is empty (0 bytes): an interrupted copy or download?")
    if not os.access(path, os.R_OK):
        raise CheckpointFileError(f"{path} cannot be read: permission denied")


def _looks_like_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\n\r\f" for c in text)


def _describe_zip(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a truncated or damaged zip archive (an interrupted copy or download?)"
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return ""  # a PyTorch checkpoint: torch.load's own error says what is wrong inside
    if names and all(name.endswith(".npy") for name in names):
        return "a NumPy .npz archive, not a PyTorch checkpoint"
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"a zip archive that is not a PyTorch checkpoint (no data.pkl inside; it holds: {shown or 'nothing'})"


def is_torch_zip(path: str) -> bool:
    """Whether `path` is a zip archive as torch.save writes them (with a data.pkl inside)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def describe_weights_file(path: str) -> str:
    """What the file is when it is clearly no checkpoint (from its first bytes), else ""."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return ""
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array, not a checkpoint"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _describe_zip(path)
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (Keras / TensorFlow weights?), not a PyTorch checkpoint"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file: decompress it first"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "a safetensors file, not a PyTorch checkpoint"
    if _looks_like_text(head):
        first_line = head.decode("utf-8", "replace").strip().splitlines()[0][:60] if head.strip() else ""
        return f"a text file (starting {first_line!r}), not a checkpoint"
    return ""


def unreadable_weights_file(path: str, error: BaseException, kind: str = "checkpoint") -> CheckpointFileError:
    """The CheckpointFileError for a file whose loader failed with `error`."""
    if isinstance(error, PermissionError):
        return CheckpointFileError(f"{path} cannot be read: permission denied")
    description = describe_weights_file(path)
    if description:
        return CheckpointFileError(f"{path} is {description}")
    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return CheckpointFileError(f"{path}: cannot read {kind} (truncated or corrupt?): {reason}")
