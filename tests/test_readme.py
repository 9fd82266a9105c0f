"""Examples that run as written, in the README and every page of the docs site: shell commands that parse
in bash, and Python snippets that name only attributes the objects really have."""

from __future__ import annotations

import pytest

import dataclasses
import re
import subprocess
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def text_of_pages() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in PAGES if "reference" not in p.parts)


def blocks(*languages: str) -> list[str]:
    """The fenced code blocks of the README in these languages ('' for a fence without one)."""
    text = text_of_pages()
    return [m.group(2) for m in re.finditer(r"^ *```(\w*)\n(.*?)^ *```", text, re.S | re.M) if m.group(1) in languages]


def shell_commands() -> list[str]:
    commands = []
    for block in blocks("", "bash", "console", "sh"):
        text = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        for line in text.splitlines():
            line = re.sub(r"<[\w .-]+>", "NAME", line.strip().removeprefix("$ "))  # placeholders: results/<sweep>
            if re.match(r"(schedsweep|make|python|pip|sbatch|srun) ", line):
                commands.append(line)
    return commands


@pytest.mark.slow
def test_every_shell_command_in_the_readme_parses_in_bash() -> None:
    commands = shell_commands()
    assert len(commands) > 20
    bad = [c for c in commands if subprocess.run(["bash", "-n", "-c", c], capture_output=True).returncode]
    assert bad == []  # e.g. an unquoted seed=range(3) is a bash syntax error


def test_every_override_with_parentheses_in_the_readme_is_quoted() -> None:
    text = text_of_pages()
    unquoted = re.findall(r"(?<!['\"\w.])[\w.]+=(?:range|choice|interval)\([^)]*\)(?!['\"])", text)
    assert unquoted == []


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} | {n for n in dir(cls) if not n.startswith("_")}


def test_the_python_api_snippet_names_real_attributes() -> None:
    from schedsweep.results.report import Report
    from schedsweep.sweep.api import Prepared

    code = "\n".join(blocks("python"))
    used = {("rep", a) for a in re.findall(r"\brep\.(\w+)", code)} | {("prepared", a) for a in re.findall(r"\bprepared\.(\w+)", code)}
    assert ("rep", "ranked") in used and ("prepared", "to_run") in used
    owners = {"rep": Report, "prepared": Prepared}
    assert [f"{o}.{a}" for o, a in sorted(used) if a not in _fields(owners[o])] == []
    assert typing.get_type_hints(Prepared)["to_run"] is int
    (line,) = [line for line in code.splitlines() if "prepared.to_run" in line]
    assert "how many" in line  # a count, not a list of runs
