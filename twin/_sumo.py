"""Where the SUMO wheels put their binaries and tools, and how to run them.

The ``eclipse-sumo`` wheel ships ``netconvert``, ``sumo``, ``duarouter`` and SUMO's
``tools/``. Its bundled binaries need ``SUMO_HOME`` and ``PROJ_LIB`` set, or they fail
with "Cannot find proj.db" (``PROJ_DATA`` alone does not help; see MEASURED.md).
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from twin._errors import SumoError


@cache
def sumo_home() -> Path:
    """The SUMO installation shipped by the ``eclipse-sumo`` wheel."""
    import sumo

    return Path(sumo.SUMO_HOME)


@cache
def sumo_version() -> str:
    """SUMO's version, as its ``sumo`` binary reports it (for example ``1.28.0``)."""
    out = run_tool("sumo", ["--version"], timeout=60).splitlines()
    first = out[0] if out else ""
    # "Eclipse SUMO sumo v1_28_0+0000-..." or "Eclipse SUMO sumo Version 1.28.0"
    for token in first.replace("v", " ").split():
        if token[:1].isdigit():
            return token.replace("_", ".").split("+")[0]
    return first.strip()


def sumo_env() -> dict[str, str]:
    """The environment a SUMO binary needs: ``SUMO_HOME`` and the PROJ data folder."""
    env = dict(os.environ)
    home = sumo_home()
    env["SUMO_HOME"] = str(home)
    for candidate in (home / "data" / "proj", home / "share" / "proj"):
        if (candidate / "proj.db").exists():
            env["PROJ_LIB"] = str(candidate)
            env["PROJ_DATA"] = str(candidate)
            break
    else:
        import pyproj

        env["PROJ_LIB"] = env["PROJ_DATA"] = pyproj.datadir.get_data_dir()
    return env


def tool_path(name: str) -> Path:
    """The path of a SUMO binary (``netconvert``, ``sumo``, ...) from the wheel."""
    path = sumo_home() / "bin" / name
    if not path.exists():
        raise SumoError(f"the SUMO wheel has no {name!r} binary at {path}")
    return path


def run_tool(
    name: str, args: list[str], *, timeout: float | None = None, log: Path | None = None
) -> str:
    """Run a SUMO binary and return what it printed.

    Parameters
    ----------
    name
        The binary, for example ``"netconvert"``.
    args
        Its arguments.
    timeout
        Seconds before it is stopped.
    log
        A file that receives everything the tool printed.

    Raises
    ------
    SumoError
        When the tool exits with an error; the message quotes its last lines.
    """
    cmd = [str(tool_path(name)), *args]
    try:
        proc = subprocess.run(
            cmd, env=sumo_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SumoError(f"{name} did not finish within {timeout} s") from exc
    output = proc.stdout + proc.stderr
    if log is not None:
        log.write_text(output, encoding="utf-8")
    if proc.returncode != 0:
        tail = "\n".join(line for line in output.splitlines() if line.strip())
        tail = "\n".join(tail.splitlines()[-8:])
        raise SumoError(f"{name} failed (exit status {proc.returncode}):\n{tail}")
    return output


_console: dict[str, Path] = {}


def sumo_console_to(path: Path) -> None:
    """Send what SUMO prints to the console (its warnings go to standard error: "actuated
    tlLogic ... has no controlling detector") to ``path``, for a process that runs SUMO
    in-process (the live twin, the benchmarks), as a run's worker keeps its SUMO console
    in the run folder. Python's own ``sys.stderr`` stays on the terminal: only what is
    written below Python (SUMO's C++) goes to the file. Once per process."""
    import sys

    if _console:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    terminal = os.dup(2)
    log = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding="utf-8", errors="replace")
    _console["path"] = path
