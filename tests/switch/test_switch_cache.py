"""The switch read cache stays bounded whatever names the requests carry (issue 16 item 7):
every ``GET /v1/switches/{name}`` of a new name used to add an entry for good."""

from __future__ import annotations

from monitor.settings import FileConfig
from monitor.store import Store
from monitor.switch.service import SwitchService, Wanted


def test_reads_of_ever_new_names_keep_the_cache_bounded_and_the_last_known_state(
    sqlite_store: Store,
) -> None:
    svc = SwitchService(sqlite_store, FileConfig())
    svc.set_by_human("kept", Wanted(mode="manual"), actor="alice", reason="incident")
    svc.all()  # the full read every daemon makes at start
    bound = svc.max_cached
    for i in range(bound * 2):
        svc.get(f"probe-{i}")
    assert len(svc._cache) <= bound
    # what the bound evicted is still known: a written switch from the full read
    known = svc.last_known("kept")
    assert known is not None and known.state.mode == "manual"
