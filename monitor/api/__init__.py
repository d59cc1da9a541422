"""The HTTP API (FastAPI): ingest, reads, switches, OFREP, Alertmanager webhook, metrics."""
