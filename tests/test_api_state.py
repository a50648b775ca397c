"""The service's open collections (rag/api/state.py): pinned while in use, closed for a switch."""

from __future__ import annotations

import threading
from pathlib import Path

from rag.api.state import ServiceState, collections_in_use
from rag.config import Settings
from tests.fakes import HashEmbedder, ScriptedGenerator


def test_a_switch_waits_for_the_requests_that_use_the_collection(tmp_path: Path) -> None:
    state = ServiceState(Settings(data_dir=tmp_path), HashEmbedder(), ScriptedGenerator())
    try:
        using, done, switched = threading.Event(), threading.Event(), threading.Event()
        counts: list[int] = []

        def request() -> None:
            with collections_in_use():
                store = state.store("alpha", create=True)
                using.set()
                assert done.wait(10)
                counts.append(store.count())  # still open: the switch waited for this

        def switch() -> None:
            with state.switching("alpha"):
                switched.set()

        reader = threading.Thread(target=request)
        reader.start()
        assert using.wait(10)
        switcher = threading.Thread(target=switch)
        switcher.start()
        assert not switched.wait(0.5)  # waiting for the request
        done.set()
        reader.join(10)
        switcher.join(10)
        assert switched.is_set() and counts == [0]
        assert "alpha" not in state.open_collections()
        assert state.store("alpha").count() == 0  # opened again after the switch
    finally:
        state.close()
