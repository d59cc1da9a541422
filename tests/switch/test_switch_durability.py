"""The switch over real HTTP: concurrent PUTs with If-Match lose no update."""

from __future__ import annotations

import threading

import httpx

from monitor.store import Store
from tests.support.switches import AUTH, make_app, serving


def test_concurrent_puts_with_if_match_get_412_and_lose_no_update(store: Store) -> None:
    stale: list[int] = []
    with serving(make_app(store)) as url:

        def worker(i: int) -> None:
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
                for k in range(5):
                    while True:
                        got = http.get("/v1/switches/wf")
                        actions = [*got.json()["disabled_actions"], f"a{i}_{k}"]
                        r = http.put(
                            "/v1/switches/wf",
                            headers={"If-Match": got.headers["etag"]},
                            json={"disabled_actions": actions, "reason": f"{i}/{k}"},
                        )
                        if r.status_code == 200:
                            break
                        assert r.status_code == 412, r.text
                        stale.append(i)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        final = httpx.get(f"{url}/v1/switches/wf", headers=AUTH).json()
        audit = httpx.get(
            f"{url}/v1/audit", params={"workflow": "wf", "limit": 1000}, headers=AUTH
        ).json()["audit"]
    assert set(final["disabled_actions"]) == {f"a{i}_{k}" for i in range(6) for k in range(5)}
    assert final["version"] == 30
    assert len(audit) == 30
    # every audit row moved the version by exactly one: no write was based on a stale read
    assert sorted(e["after"]["version"] for e in audit) == list(range(1, 31))
    assert all(e["after"]["version"] == e["before"]["version"] + 1 for e in audit)
