"""Ingest: the HTTP-independent service that stores batches, its parse processes, and the
file drivers (import, tail) that feed it."""
