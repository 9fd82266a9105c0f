"""Files, written so that a reader never sees half of one: the one atomic-write helper, the one lock, JSONL.

    with io.replacing(path) as tmp:     # any writer: text, bytes, Parquet, torch.save, a folder
        torch.save(state, tmp)          # renamed onto `path` when the block ends, removed if it raises

Every temporary name is unique (pid and a random token: two writers of one file never share one), sits
beside its target (the rename stays on one file system) and keeps the target's suffix (matplotlib and
pyarrow read the format from it). Files get the mode the umask allows, so teammates can read a shared
sweep folder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from schedsweep.errors import ResultsError


def umask() -> int:
    """This process's umask, read without changing it (os.umask can only set it, racing other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write; renamed onto `path` when the block ends, removed when it raises.

    A folder written there replaces `path` only when `path` is absent or an empty folder (rename's rule);
    remove an older one first when a new one must win."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp{path.suffix}")
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(error, RuntimeError) and _full(path.parent):  # torch.save's "file write failed", pyarrow's
            raise OSError(errno.ENOSPC, f"no space left on the device of {path.parent} ({error})") from error
        raise


def _full(folder: Path) -> bool:
    """Less than 1 MiB free for this user where `folder` lives: a writer that failed there ran out of space,
    whatever it raised (torch.save raises RuntimeError, not OSError, when the disk fills)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < 2**20


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: Path, *, missing_ok: bool = False) -> list[Any]:
    """One object per non-empty line; a ResultsError naming the file and line for one that is not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return []
        raise
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ResultsError(f"'{path}' line {lineno} is not valid JSON ({e.msg}).") from None
    return records


def append_jsonl(path: Path, obj: Any) -> None:
    """One line appended in one write (O_APPEND: lines of concurrent writers do not interleave)."""
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(obj, sort_keys=True) + "\n")


@contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[IO[str] | None]:
    """An exclusive flock of `path` (created if absent) for the block; yields the lock file open for
    reading and writing, or None when wait=False and another process holds it. Released when the block
    ends or the process dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
