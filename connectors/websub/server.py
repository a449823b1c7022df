"""The WebSub callback: ``GET {path}/{source id}`` verifies intent, ``POST`` delivers content.

Starlette on uvicorn (h11): the callback faces the internet, so it gets a maintained HTTP
parser and server rather than http.server. The handlers are thin: reading the body within the
fetch limit happens here (a body past it is refused with 413 before anything is parsed or
signed), the rest is :class:`~newsmon.connectors.websub.subscriber.Subscriber`'s, run in
Starlette's thread pool because it does blocking work (SQLite, publishing with acks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsmon.connectors.websub.subscriber import Subscriber

#: Status of the answer to a push, by outcome. A discarded push (bad signature) is still a 2xx
#: (spec 7.1: the hub must not learn whether the signature failed); 410 tells a hub to stop
#: pushing a subscription this side does not have.
_STATUS = {"published": 202, "bad-signature": 202, "failed": 202, "unknown": 410}


def callback_app(subscriber: Subscriber) -> Starlette:
    """The ASGI app serving every source's callback under the path of ``callback_url``."""
    callback_url = subscriber.push.callback_url
    assert callback_url is not None
    prefix = urlsplit(callback_url).path.rstrip("/")
    limit = subscriber.config.defaults.http.max_bytes

    async def verify(request: Request) -> Response:
        params = dict(request.query_params)
        answer = await run_in_threadpool(subscriber.verify, request.path_params["source_id"],
                                         params)
        if answer is None:
            return PlainTextResponse("no such pending request", status_code=404)
        return PlainTextResponse(answer)

    async def receive(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return PlainTextResponse(f"body over {limit} bytes", status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        outcome = await run_in_threadpool(subscriber.receive, request.path_params["source_id"],
                                          bytes(body), headers)
        return PlainTextResponse(outcome, status_code=_STATUS[outcome])

    return Starlette(routes=[
        Route(prefix + "/{source_id}", verify, methods=["GET"]),
        Route(prefix + "/{source_id}", receive, methods=["POST"]),
    ])


def server(subscriber: Subscriber, *, host: str | None = None,
           port: int | None = None) -> uvicorn.Server:
    """The uvicorn server of the callback on ``push.listen`` (or ``host``/``port``)."""
    listen_host, listen_port = subscriber.push.host_port
    config = uvicorn.Config(
        callback_app(subscriber), host=host or listen_host,
        port=listen_port if port is None else port, log_level="warning", access_log=False,
        # A hub keeps few connections; a flood of slow clients must not pile up threads.
        limit_concurrency=64, timeout_keep_alive=5, lifespan="off",
    )
    return uvicorn.Server(config)


@contextmanager
def serving(http: uvicorn.Server, timeout_s: float = 10.0) -> Iterator[uvicorn.Server]:
    """Run ``http`` in a thread until the block ends (tests, and ``newsmon push`` beside its
    maintenance loop); raises RuntimeError when it does not start listening in time."""
    thread = threading.Thread(target=http.run, name="newsmon-websub", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not http.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the WebSub callback did not start on {http.config.host}:"
                               f"{http.config.port}")
        time.sleep(0.02)
    try:
        yield http
    finally:
        http.should_exit = True
        thread.join(timeout_s)
