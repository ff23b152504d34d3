"""The README's example outputs are true for the code as it is.

A block of example output in the README is marked with the commands that print it::

    <!-- output of: twin run scenarios/helsinki_morning_rush.yaml -->
    ```text
    ...
    ```

This test runs each marked command (cheap ones only: the default city) in an 80-column
terminal, as the README shows it, and checks every line the README shows: each table row cell by cell,
each other line word for word. Lines the README elides ("...") and lines that change from
run to run (wall times, speeds, build dates) are left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TWIN = Path(sys.executable).parent / "twin"
MARK = re.compile(r"<!-- output of: (.+?) -->\n```text\n(.*?)\n```", re.S)
#: A Python example and the output marked as its own: ``<!-- output of: python -->``.
PYTHON = re.compile(r"```python\n(.*?)\n```\s*<!-- output of: python -->", re.S)
DOCS = [ROOT / "README.md", ROOT / "docs" / "TIMELINE.md"]
#: Lines that differ between runs or machines, or that make prints rather than twin.
VARYING = re.compile(
    r"× real time|simulated|Built city bundle|is up to date|\.venv/bin|Open the dashboards"
    r"|built  |bundle  |source  |versions  |\.\.\.|…"
)


BORDERS = set("┏┓┗┛┡┩━┃╇╋┳┻└┘┌┐─┬┴┼├┤│ ")


def blocks() -> list[tuple[str, str]]:
    """(command, output) of every marked block; a Python example's command is its code."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        code = iter(PYTHON.findall(text))
        for command, shown in MARK.findall(text):
            found.append((f"python: {next(code)}" if command == "python" else command, shown))
    return found


def _cells(line: str) -> tuple[str, ...] | None:
    """A table row's cells, or None for a line that is not a row."""
    if not line.lstrip().startswith(("│", "┃")):
        return None
    return tuple(c.strip() for c in re.split(r"[│┃]", line.strip())[1:-1])


def test_the_readme_marks_its_outputs():
    commands = [c for c, _ in blocks()]
    assert any("twin run scenarios/jakarta_morning_rush.yaml" in c for c in commands)
    assert any(c.startswith("twin coverage") for c in commands)
    assert any(c.startswith("twin place-posts") for c in commands)
    assert any(c.startswith("python: ") for c in commands)


def test_the_timeline_reference_is_the_code_s():
    from twin import events

    assert events.reference() in (ROOT / "docs" / "TIMELINE.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def workdir(helsinki_city, jakarta_build, tmp_path_factory):
    """A folder as a new user's checkout after ``make demo``: the scenarios, the built-in
    cities, and (once a test ran it) the morning rush's run."""
    path = tmp_path_factory.mktemp("readme")
    (path / "scenarios").symlink_to(ROOT / "scenarios")
    (path / "cities").mkdir()
    (path / "cities" / "helsinki").symlink_to(helsinki_city.path)
    (path / "cities" / "jakarta").symlink_to(jakarta_build.city.path)
    return path


def _twin(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(
        [str(TWIN), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "80", "TERM": "dumb"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, shown", blocks(), ids=[c.splitlines()[0][:60] for c, _ in blocks()]
)
def test_a_readme_output_matches_what_the_command_prints(command, shown, workdir):
    if command.startswith("python: "):
        if not (workdir / "runs" / "jakarta-morning-rush").exists():  # the example's data
            _twin(["run", "scenarios/jakarta_morning_rush.yaml", "-q"], workdir)
        proc = subprocess.run(
            [sys.executable, "-c", command.removeprefix("python: ")],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        printed = proc.stdout
    else:
        printed = "".join(_twin(part.split()[1:], workdir) for part in command.split(" && "))
    assert all(len(line) <= 80 for line in printed.splitlines()), printed  # 80 columns
    assert not re.search(r"\w…", printed), printed  # no word cut short
    rows = {_cells(line) for line in printed.splitlines()} - {None}
    said = {" ".join(line.split()) for line in printed.splitlines()}
    for line in shown.splitlines():
        if not line.strip() or VARYING.search(line) or set(line.strip()) <= BORDERS:
            continue
        cells = _cells(line)
        if cells is not None:
            assert cells in rows, f"README row not printed by `{command}`:\n{line}\n\n{printed}"
        else:
            assert " ".join(line.split()) in said, (
                f"README line not printed by `{command}`:\n{line}\n\n{printed}"
            )
    # and no printed row is missing from the README's table (a new KPI, say)
    shown_rows = {_cells(line) for line in shown.splitlines()} - {None}
    if shown_rows:
        missing = [
            line
            for line in printed.splitlines()
            if _cells(line) is not None
            and _cells(line) not in shown_rows
            and not VARYING.search(line)
        ]
        assert not missing, f"rows `{command}` prints that the README leaves out: {missing}"
