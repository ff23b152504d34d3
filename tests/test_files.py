"""Writing results: nothing half-written is left behind, whenever an interrupt lands."""

from __future__ import annotations

import os
import signal
import tempfile

import pytest

from twin._files import replacing_folder


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_as_the_temporary_folder_is_made_leaves_nothing(tmp_path, monkeypatch, sig):
    """The signal lands just after the temporary folder is made, before the write is under
    way: the window through which a build's Ctrl-C once left ``.NAME.partial-*`` behind."""

    def stop(*_):
        raise KeyboardInterrupt  # as `twin`'s own SIGTERM handler does

    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        made = real(*args, **kwargs)
        os.kill(os.getpid(), sig)  # lands while the folder exists
        return made

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            with replacing_folder(
                tmp_path / "deep" / "bundle", marker="manifest.json", what="a city bundle"
            ) as tmp:
                (tmp / "manifest.json").write_text("{}")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not (tmp_path / "deep").exists() or not any((tmp_path / "deep").iterdir())
