"""Engine creation: a PostgreSQL URL without its driver fails naming the extra to install."""

from __future__ import annotations

import sys

import pytest

from monitor.store import DriverMissing, Store


def test_a_postgresql_url_without_psycopg_names_the_postgres_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # psycopg is the `postgres` extra, not a dependency: an SQLite install lacks it
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(DriverMissing, match=r"driftwarden\[postgres\]"):
        Store("postgresql+psycopg://dw@127.0.0.1:5432/dw")
