"""A loopback TCP forwarder that cuts a network path for real, then heals it.

A client given `NetCut.port` instead of the target's port reaches the target through it.
`cut()` closes both sides of every open connection at once (the client and the target
each see the connection drop, as when a gate's cable is pulled and its switch port resets)
and turns new connections away until `heal()`: they are accepted and reset at once, so a
client's reconnect attempt fails fast instead of hanging. The listening port stays bound
while cut, so nobody else can take it.

`cut(silent=True)` is a cable pulled with nothing to tell either side: open connections stay
up but every byte is dropped, and new connections are accepted and never answered, so each
side finds out only by its own keepalive (paho after 1.5 keepalives; mosquitto then sends
the client's will). An end that closes meanwhile is closed alone: the far side hears
nothing. `heal()` resets whatever the silence still holds, as the far ends would have given
up on it.

Threads: one accepts, two per connection copy bytes; `close()` joins them all.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

from edge.errors import EdgeError

CHUNK = 65536


class NetCutError(EdgeError, RuntimeError):
    """A NetCut used after close, or its target is unreachable; the message says which."""


def _reset(sock: socket.socket) -> None:
    """Close a socket with a TCP reset, so its peer sees the drop at once."""
    with contextlib.suppress(OSError):  # already closed by the other pump
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Pair:
    """One client connection and its connection to the target."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.lock = threading.Lock()
        self.closed = False

    def drop(self) -> None:
        """Close both sides (idempotent); each peer sees a reset."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):  # the peer closed it first
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv()
            _reset(sock)


class NetCut:
    """Forward a free 127.0.0.1 port to `host:target_port` until cut, closed or healed."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified when a counter moves
        self._pairs: set[_Pair] = set()
        self._threads: list[threading.Thread] = []
        self._is_cut = False
        self._silent = False
        self._held: list[socket.socket] = []  # connections accepted during a silent cut
        self._closed = False
        self.connections = 0  # connections forwarded since start
        self.refused = 0  # connections turned away while cut
        self.cuts = 0
        self.bytes_up = 0  # client → target
        self.bytes_down = 0  # target → client
        self.bytes_dropped = 0  # swallowed by a silent cut
        self.ends_closed = 0  # ends that closed during a silent cut, kept from the far side
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"netcut-{self.port}", daemon=True
        )
        self._acceptor.start()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        if self._is_cut and not self._closed:
            state = "silently cut" if self._silent else "cut"
        return (
            f"<NetCut 127.0.0.1:{self.port} -> {self.target[0]}:{self.target[1]} {state}, "
            f"{self.open_connections} open of {self.connections}, {self.refused} refused, "
            f"{self.cuts} cuts, {self.bytes_up} B up, {self.bytes_down} B down, "
            f"{self.bytes_dropped} B dropped>"
        )

    @property
    def is_cut(self) -> bool:
        """True between `cut()` and `heal()`."""
        return self._is_cut

    @property
    def open_connections(self) -> int:
        """Return how many connections are forwarding right now."""
        with self._lock:
            return len(self._pairs)

    def wait_for(self, predicate: Callable[[NetCut], bool], timeout_s: float = 10.0) -> bool:
        """Wait until `predicate(self)` holds after a connection is forwarded or refused, an
        end closes or bytes are dropped during a silent cut."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout_s)

    def cut(self, silent: bool = False) -> None:
        """Drop every open connection at once and turn new ones away until `heal()`.

        `silent`: drop nothing and answer nothing instead; every byte is swallowed.
        """
        self._check_open()
        with self._lock:
            self._is_cut = True
            self._silent = silent
            self.cuts += 1
            pairs = [] if silent else list(self._pairs)
            if not silent:
                self._pairs.clear()
        for pair in pairs:
            pair.drop()

    def heal(self) -> None:
        """Forward new connections again (after a silent cut, those it held are reset)."""
        self._check_open()
        with self._lock:
            was_silent = self._is_cut and self._silent
            self._is_cut = self._silent = False
            held, self._held = self._held, []
            pairs = list(self._pairs) if was_silent else []
            if was_silent:
                self._pairs.clear()
        for sock in held:
            _reset(sock)
        for pair in pairs:
            pair.drop()

    def close(self) -> None:
        """Drop every connection, stop listening and join the threads; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pairs = list(self._pairs)
            self._pairs.clear()
            held, self._held = self._held, []
        for sock in held:
            _reset(sock)
        for pair in pairs:
            pair.drop()
        self._wake_w.send(b"x")
        self._acceptor.join(10)
        for thread in self._threads:
            thread.join(10)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> NetCut:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise NetCutError(f"{self!r} is closed; make a new NetCut")

    def _accept_loop(self) -> None:
        while True:
            ready, _, _ = select.select([self._listener, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue  # the client gave up before we accepted
            self._admit(client)

    def _admit(self, client: socket.socket) -> None:
        with self._lock:
            refuse = self._is_cut or self._closed
            if refuse:
                self.refused += 1
                self._changed.notify_all()
                if self._silent and not self._closed:
                    self._held.append(client)  # accepted, never answered
                    return
        if refuse:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            # The target is down: the client sees what it would see without us.
            _reset(client)
            return
        pair = _Pair(client, upstream)
        try:
            upstream.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pair.drop()  # the client reset already; the accept loop carries on
            return
        with self._lock:
            if self._is_cut or self._closed:  # cut while we connected
                self.refused += 1
                self._changed.notify_all()
                pair.drop()
                return
            self._pairs.add(pair)
            self.connections += 1
            self._changed.notify_all()
            # Keep only live pumps, so a long run does not collect dead threads.
            self._threads = [t for t in self._threads if t.is_alive()]
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(pair, src, dst, up), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, up: bool) -> None:
        """Copy one direction until either side closes, then drop the pair (while silently
        cut, close only `src`: the other end is left to `heal()`)."""
        try:
            while data := src.recv(CHUNK):
                with self._lock:  # counted before it is sent: a reader sees it counted
                    if self._is_cut and self._silent:
                        self.bytes_dropped += len(data)
                        self._changed.notify_all()
                        continue
                    if up:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                dst.sendall(data)
        except OSError:
            pass  # a reset or our own cut: dropping the pair below is the answer to both
        with self._lock:
            silent = self._is_cut and self._silent and not self._closed
            if silent:  # the far side must not hear of it: only this end goes
                self.ends_closed += 1
                self._changed.notify_all()
            else:
                self._pairs.discard(pair)
        if silent:
            with contextlib.suppress(OSError):
                src.close()  # `heal()` or `close()` resets the rest of the pair
            return
        pair.drop()
