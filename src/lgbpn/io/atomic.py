"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import WriteError, one_line


@contextmanager
def atomic_path(path, error: type[WriteError] = WriteError) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block succeeds, fsync it and move it onto `path`.

    The parent folder is created if missing. On an exception the temporary file is removed and
    `path` is untouched. OSErrors (permission denied, disk full, parent is a file) become `error`
    naming `path`.
    """
    path = Path(path)
    # Hidden, and ending in .tmp, so the folder walker never mistakes it for an input image.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # mkdir's own wording ("File exists") misleads
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), path.parent)
        raise error(f"{path}: cannot write ({blocker} is a file, not a folder)") from None
    except OSError as e:
        raise error(f"{path}: cannot write ({one_line(e)})") from e
    try:
        # O_EXCL: never reuse someone else's file; mode 0o666 lets the umask decide, like a normal create.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise error(f"{path}: cannot write ({one_line(e)})") from e
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        raise error(f"{path}: cannot write ({one_line(e)})") from e
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
