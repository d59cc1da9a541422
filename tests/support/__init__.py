"""Helpers the tests of several subsystems share (a daemon in a subprocess, an app served in
a thread, OTLP payloads, a TCP proxy that can cut the database off, the compose stack)."""
