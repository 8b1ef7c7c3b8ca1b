"""Packets go out at once: every link of ours sets TCP_NODELAY on its socket."""

from __future__ import annotations

import socket

from edge.link.mqtt import no_nagle


def test_the_socket_callback_turns_nagle_off_on_a_connected_tcp_socket() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with client, accepted:
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            no_nagle(None, None, client)  # type: ignore[arg-type]
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_socket_that_is_not_tcp_is_left_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        no_nagle(None, None, left)  # type: ignore[arg-type]
        no_nagle(None, None, object())  # type: ignore[arg-type]
