"""A raw websocket handshake against the simulator (trio-websocket's client leaks its socket
when the server rejects the handshake): the first bytes of the answer."""

from __future__ import annotations

import trio


async def handshake_answer(port: int, target: str) -> bytes:
    request = (f"GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request.encode())
        with trio.fail_after(5):
            return bytes(await stream.receive_some(4096))
