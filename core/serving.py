"""An ASGI app served over real HTTP by uvicorn in a thread of this process, on a free local port: what the
browser tests and the page-load bench drive Chromium against."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serving(app: Any, *, name: str, start_timeout_s: float = 20.0) -> Iterator[str]:  # noqa: ANN401 - an ASGI app
    """Serves ``app`` for as long as the block runs; yields its base URL and stops it afterwards."""
    import uvicorn  # noqa: PLC0415 - only these callers serve in-process

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # a free port, held from here until the server owns it
    port = sock.getsockname()[1]
    # A short graceful shutdown: an event stream left open (Home's /live/home) would otherwise hold the exit up.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, loop="asyncio", lifespan="on",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {name} did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
