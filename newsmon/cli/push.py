"""``newsmon push``: the WebSub callback server and the subscriptions it keeps."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from newsmon.cli import _common as common
from newsmon.cli._common import feeds

#: How often the subscriptions are looked after (renewals, timeouts, removed sources).
MAINTAIN_EVERY_S = 30.0


@common.app.command()
def push(
    config: common.ConfigOpt = None,
    allow_private: Annotated[
        bool, typer.Option(help="Let feeds name hubs on private or loopback addresses "
                           "(tests, a hub on your own network).")
    ] = False,
    metrics_port: common.MetricsPortOpt = None,
    metrics_host: common.MetricsHostOpt = "127.0.0.1",
    metrics_file: common.MetricsFileOpt = None,
) -> None:
    """Serve the WebSub callback (feeds.yaml `defaults.push`) and keep every feed with a hub
    subscribed; pushed items are published to Kafka like polled ones. Run `newsmon poll`
    beside it: it polls pushed sources slowly and the others as usual."""
    from newsmon import metrics
    from newsmon.connectors.publisher import KafkaPublisher
    from newsmon.connectors.websub.server import server, serving
    from newsmon.connectors.websub.subscriber import Subscriber
    from newsmon.ops import orchestrate

    loaded = common.settings(config)
    sources = feeds(loaded)
    push_settings = sources.defaults.push
    if push_settings.callback_url is None:
        raise common.fail(f"{loaded.feeds}: defaults.push.callback_url is not set: without a "
                          "public callback no hub can push, and `newsmon poll` polls every "
                          "source", common.EXIT_CONFIG)
    publisher = KafkaPublisher(loaded.kafka)
    with common.exclusive(loaded, "push"), metrics.exported(
            "push", port=metrics_port, host=metrics_host, textfile=metrics_file):
        poller = orchestrate.make_poller(loaded, sources, publisher)
        subscriber = Subscriber(sources, poller, allow_private=allow_private)
        stop = threading.Event()
        http = server(subscriber)

        def maintain() -> None:
            while not stop.is_set():
                subscriber.maintain()
                stop.wait(MAINTAIN_EVERY_S)

        try:
            with serving(http):
                typer.echo(f"WebSub callback on {push_settings.listen}, public at "
                           f"{push_settings.callback_url}/<source id>")
                worker = threading.Thread(target=maintain, name="newsmon-websub-maintain",
                                          daemon=True)
                worker.start()
                # uvicorn in its thread handles no signals: wait here for SIGINT/SIGTERM.
                _wait_for_signal(stop)
        finally:
            stop.set()
            subscriber.close()
            poller.close()
            publisher.close()


def _wait_for_signal(stop: threading.Event) -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
