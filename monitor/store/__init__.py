"""Persistence: SQLite (embedded default) or PostgreSQL through SQLAlchemy Core."""

from monitor.store.database import InsertResult, Store
from monitor.store.engine import DriverMissing, StoreUnavailable, make_engine

__all__ = ["DriverMissing", "InsertResult", "Store", "StoreUnavailable", "make_engine"]
