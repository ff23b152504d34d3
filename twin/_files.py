"""Writing results so that nothing half-written is ever left behind.

A bundle or a run folder is written into a hidden temporary folder beside its place and
renamed into place only when complete (:func:`replacing_folder`); a single file is written
beside its place and renamed (:func:`write_text_atomic`). An error or an interrupt removes
the temporary folder, and the parent folders made for it; a build killed outright leaves
only a hidden ``.<name>.partial-*`` folder, which the next write to the same place removes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from twin._errors import BundleError


def check_folder(out: Path, *, marker: str, what: str) -> None:
    """Refuse ``out`` if it is a file, or a folder with content that is not ``what`` (one
    holding ``marker``), so that writing there never clobbers someone else's folder."""
    if out.exists() and not out.is_dir():
        raise BundleError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise BundleError(
            f"--out {out}: the folder exists and is not {what}; choose another folder or empty it"
        )


@contextlib.contextmanager
def replacing_folder(out: Path, *, marker: str, what: str) -> Iterator[Path]:
    """A temporary folder beside ``out`` that replaces ``out`` when the block succeeds.

    Parameters
    ----------
    out
        Where the result goes.
    marker
        A file that every folder of this kind holds (``manifest.json``, ``run.json``).
    what
        The kind of folder, for messages ("a city bundle").

    Raises
    ------
    BundleError
        ``out`` cannot be written, or is a folder of another kind.
    """
    check_folder(out, marker=marker, what=what)
    parent = out.parent
    for ancestor in (parent, *parent.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise BundleError(
                f"--out {out}: cannot write there ({ancestor} is a file, not a folder)"
            )
    made = [p for p in (parent, *parent.parents) if not p.exists()]
    # The temporary folder is named before it is made, so that the clean-up knows it
    # whenever an interrupt (Ctrl-C, SIGTERM) lands: between mkdtemp's return and the try,
    # an interrupt once left it behind. The clean-up itself finishes even if interrupted.
    tmp = parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    done = False
    try:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for stale in parent.glob(f".{out.name}.partial-*"):  # left by a killed writer
                shutil.rmtree(stale, ignore_errors=True)
            tmp.mkdir()  # as shareable as any folder the user makes (the umask decides)
        except OSError as exc:
            raise BundleError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc
        yield tmp
        with _interrupts_held():  # best effort: the old folder and the new swap places
            _swap_into_place(tmp, out)
            done = True
    finally:
        _finish(lambda: _clean_up(tmp, made if not done else []))


def _clean_up(tmp: Path, made: list[Path]) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    _remove_empty(made)


def _finish(step: Callable[[], None]) -> None:
    """Run an idempotent step to its end, however many interrupts land meanwhile; the first
    of them is raised after it."""
    pending: BaseException | None = None
    while True:
        try:
            step()
            break
        except KeyboardInterrupt as exc:
            pending = pending or exc
    if pending is not None:
        raise pending


_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from this thread for the block; one that came meanwhile
    is delivered (and raises) when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python delivers signals to the main thread only
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file beside its place, then rename it there."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders made for a failed write, innermost first, if empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()
