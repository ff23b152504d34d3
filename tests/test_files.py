"""Writing results: nothing half-written is left behind, whenever an interrupt lands."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from twin._files import replacing_folder


@pytest.mark.parametrize("raised_in", ["the main thread", "another thread"])
def test_an_interrupt_as_the_temporary_folder_is_made_leaves_nothing(
    tmp_path, monkeypatch, raised_in
):
    """The interrupt lands just after the temporary folder is made, before the write is
    under way: the window through which a build's Ctrl-C once left ``.NAME.partial-*``
    behind. A signal handled for another thread (a progress bar's, a client's) reaches the
    main thread at once, so holding signals back in the main thread alone is not enough."""
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if ".bundle.partial-" in self.name:
            if raised_in == "another thread":
                threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGINT)).start()
                time.sleep(0.5)  # the handler raises in the main thread meanwhile
            raise KeyboardInterrupt

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(KeyboardInterrupt):
        with replacing_folder(
            tmp_path / "deep" / "bundle", marker="manifest.json", what="a city bundle"
        ) as tmp:
            (tmp / "manifest.json").write_text("{}")
    assert not (tmp_path / "deep").exists() or not any((tmp_path / "deep").iterdir())


def test_the_clean_up_finishes_through_an_interrupt(tmp_path, monkeypatch):
    """Ctrl-C pressed again while the temporary folder is being removed: it is removed all
    the same, and the interrupt raised after."""
    import shutil

    real, calls = shutil.rmtree, []

    def rmtree(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:  # the clean-up's first try
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    with pytest.raises(KeyboardInterrupt):
        with replacing_folder(tmp_path / "bundle", marker="manifest.json", what="a bundle"):
            raise ValueError("the write failed")
    assert len(calls) == 2 and not any(tmp_path.iterdir())
