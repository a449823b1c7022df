"""The inbox on the real Elasticsearch, served by uvicorn in a thread, driven by Debian's
headless Chromium through chromium-driver (selenium)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from newsmon.config import SearchSettings
from newsmon.pipeline.store import DocumentStore, open_store
from newsmon.serve.app import create_app
from newsmon.serve.auth import Credentials, hash_password
from tests.conftest import _service
from tests.serve.seed import seed

NOW = datetime.now(UTC).replace(microsecond=0)
PASSWORD = "correct horse battery"
API_KEY = "k-" + uuid.uuid4().hex
#: The browser's window, and so the screenshots' size.
WIDTH, HEIGHT = 1280, 800


@pytest.fixture(scope="module")
def es_store() -> Iterator[DocumentStore]:
    """A fresh index prefix on the shared real Elasticsearch, deleted afterwards."""
    url = _service("elasticsearch")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = open_store(SearchSettings(backend="elasticsearch", url=url, index_prefix=prefix),
                       Path("unused"))
    store.setup()
    yield store
    store.close()
    httpx.delete(f"{url}/{prefix}-*", timeout=30)
    httpx.delete(f"{url}/_index_template/{prefix}-*", timeout=30)


@pytest.fixture(scope="module")
def alert_ids(es_store: DocumentStore) -> dict[str, str]:
    return seed(es_store, NOW)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def inbox(es_store: DocumentStore, alert_ids: dict[str, str]) -> Iterator[str]:
    """The inbox's base URL: the real app under uvicorn on a free loopback port."""
    # Few iterations: the same code path, a test that does not spend seconds hashing.
    creds = Credentials(users={"alice": hash_password(PASSWORD, iterations=2000)},
                        api_keys={API_KEY: "robot"})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(es_store, creds), host="127.0.0.1",
                                          port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars",
                "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path="/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    # The viewport itself (the window size includes what headless Chromium keeps for its own
    # frame), so that screenshots are exactly WIDTH x HEIGHT.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()
