"""Collectors turn outside formats (native JSON, JSONL files, OTLP, cost logs) into events."""
