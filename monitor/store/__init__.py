"""Persistence: SQLite (embedded default) or PostgreSQL through SQLAlchemy Core."""

from monitor.store.engine import StoreUnavailable, make_engine
from monitor.store.writer import InsertResult, Store

__all__ = ["InsertResult", "Store", "StoreUnavailable", "make_engine"]
