"""A TCP proxy we can stop and start, to make a real database disappear and come back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and cut every open connection, like a database crash."""
        if self._listener is not None:
            # wakes the thread blocked in accept(); close() alone would not on Linux
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


class FaultProxy:
    """A TCP proxy that injects the faults a network database has, while it runs.

    ``blackhole()``: every byte either way is held back (connections stay open, nothing
    arrives, new connections are accepted and hang), as in a network partition; ``heal()``
    delivers what was held, as TCP's retransmission would. ``drop()``: every connection is
    cut and new ones are refused until ``heal()``. ``latency(s)``: each chunk from the
    database arrives ``s`` seconds late.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Condition()
        self._held = False  # black hole
        self._refusing = False  # drop
        self._delay = 0.0
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- faults -----------------------------------------------------------------------
    def blackhole(self) -> None:
        with self._lock:
            self._held = True

    def drop(self) -> None:
        with self._lock:
            self._refusing = True
            self._cut_all()

    def latency(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    def heal(self) -> None:
        with self._lock:
            self._held = self._refusing = False
            self._delay = 0.0
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._held = False
            self._lock.notify_all()
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._cut_all()

    def _cut_all(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()

    # -- plumbing ---------------------------------------------------------------------
    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                client.close()  # RST: connection refused, as by a firewall's reject
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._wait_open()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._conns += [client, upstream]
        threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
        threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _wait_open(self) -> None:
        with self._lock:
            while self._held and not self._closed:
                self._lock.wait(0.1)

    def _pipe(self, src: socket.socket, dst: socket.socket, from_db: bool) -> None:
        try:
            while data := src.recv(65536):
                self._wait_open()
                with self._lock:
                    delay = self._delay if from_db else 0.0
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()
