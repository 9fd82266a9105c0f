"""The real CLI in a real terminal: a pseudo-terminal of a given width (TIOCSWINSZ and COLUMNS), as a user's
terminal is. What rich prints there (cursor moves and colours stripped) is what the user reads."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

TESTS = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07")


@dataclass
class Screen:
    rc: int
    raw: str  # with carriage returns: the progress bar's frames

    @property
    def text(self) -> str:
        """The lines as they stay on the screen: each line's last frame (after its last carriage return)."""
        return "\n".join(line.rsplit("\r", 1)[-1] if line.strip("\r") else "" for line in self.raw.split("\r\n"))

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def run(args: list[str], columns: int, cwd: Path, env: dict[str, str] | None = None,
        on_output: Callable[[str, int], bool] | None = None, timeout: float = 300) -> Screen:
    """`python -m schedsweep ARGS` in a pty `columns` wide. `on_output(text so far, pty fd)` may write keys
    (Ctrl-C is b"\\x03"); once it returns True it is not called again."""
    import time

    environ = {**os.environ, **(env or {}), "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color",
               "PYTHONPATH": os.pathsep.join([os.environ.get("PYTHONPATH") or str(TESTS.parent), str(TESTS)])}
    environ.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the pty as its terminal
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "schedsweep", *args], environ)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        if on_output is not None and on_output(ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")), fd):
            on_output = None
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return Screen(os.waitstatus_to_exitcode(status), ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")))
