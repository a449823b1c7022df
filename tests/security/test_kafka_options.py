"""Kafka over SASL and TLS: the settings (secrets from the environment only) reach every
kafka-python client newsmon makes, and a TLS handshake with a real listener succeeds with
the configured CA and fails without it.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import KafkaSettings, load_settings
from newsmon.configfile import ConfigError
from newsmon.connectors.publisher import KafkaPublisher
from newsmon.kafka import KafkaUnavailable
from newsmon.pipeline.io_kafka import snapshot_ranges
from tests.listeners import tcp_listener

pytestmark = pytest.mark.timeout(120)

SECRET = "kafka-s3cret-Pa55"


def kafka_settings(tmp_path: Path, env: dict[str, str], yaml: str = "") -> KafkaSettings:
    config = tmp_path / "newsmon.yaml"
    config.write_text("kafka:\n  request_timeout_ms: 3000\n" + yaml)
    return load_settings(config, environ=env).kafka


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sasl_ssl_settings_reach_every_kafka_python_client(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not used: no connection is made\n")
    env = {"NEWSMON_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}",
           "NEWSMON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
           "NEWSMON_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
           "NEWSMON_KAFKA__SASL_USERNAME": "newsmon",
           "NEWSMON_KAFKA__SASL_PASSWORD": SECRET,
           "NEWSMON_KAFKA__SSL_CAFILE": str(tmp_path / "ca.pem")}
    settings = kafka_settings(tmp_path, env)
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    expected = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": "newsmon", "sasl_plain_password": SECRET,
                "ssl_cafile": str(tmp_path / "ca.pem"), "ssl_check_hostname": True}
    # The poller's producer and the pipeline's consumers get the same options, and
    # kafka-python (which refuses unknown options) takes them. api_version given: no
    # connection is attempted while constructing.
    producer_options = KafkaPublisher(settings)._config()
    consumer_options = settings.client_options()
    clients: list[Any] = [
        KafkaProducer(**producer_options, api_version=(3, 0, 0)),
        KafkaConsumer(**consumer_options, api_version=(3, 0, 0)),
    ]
    try:
        for client in clients:
            for key, value in expected.items():
                assert client.config[key] == value, (type(client).__name__, key)
    finally:
        clients[0].close(timeout=0)
        clients[1].close(autocommit=False)


@pytest.mark.parametrize(("env", "problem"), [
    ({"NEWSMON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "NEWSMON_KAFKA__SASL_MECHANISM": "PLAIN",
      "NEWSMON_KAFKA__SASL_USERNAME": "u"}, "kafka.sasl_password: needed with security_protocol"),
    ({"NEWSMON_KAFKA__SASL_MECHANISM": "PLAIN"}, "kafka.sasl_mechanism: set, but"),
    ({"NEWSMON_KAFKA__SSL_CAFILE": "/ca.pem"}, "kafka.ssl_cafile: set, but security_protocol"),
    ({"NEWSMON_KAFKA__SECURITY_PROTOCOL": "SSL", "NEWSMON_KAFKA__SSL_CERTFILE": "/c.pem"},
     "ssl_certfile and ssl_keyfile go together"),
])
def test_incomplete_kafka_security_is_refused_by_every_command(
        tmp_path: Path, env: dict[str, str], problem: str) -> None:
    config = tmp_path / "newsmon.yaml"
    config.write_text("search:\n  backend: embedded\n")
    for command in (["config", "check"], ["poll", "--once"], ["pipeline", "run"]):
        result = CliRunner().invoke(app, [*command, "-c", str(config)], env=env)
        assert result.exit_code == 2, (command, result.stderr)
        assert any(line.startswith(f"{config}: ") and problem in line
                   for line in result.stderr.splitlines()), result.stderr


def test_the_sasl_password_is_refused_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.sasl_password: secrets are read only from"):
        kafka_settings(tmp_path, {}, "  sasl_password: " + SECRET + "\n")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a broker certificate for 127.0.0.1, made with openssl."""
    d = tmp_path_factory.mktemp("kafka-tls")
    run = [
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
         "-out", "ca.crt", "-days", "2", "-subj", "/CN=test CA"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out",
         "broker.csr", "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "ext"],
    ]
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in run:
        subprocess.run(command, cwd=d, check=True, capture_output=True, timeout=60)
    return d


@contextmanager
def tls_listener(files: Path) -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on 127.0.0.1 that does the TLS handshake and records how it went."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files / "broker.crt", files / "broker.key")
    results: list[str] = []

    def handshake(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                results.append("handshake ok")
                tls.recv(4096)  # the client's first Kafka request; then hang up
        except (ssl.SSLError, OSError) as exc:
            results.append(f"failed: {exc}")

    with tcp_listener(handshake) as port:
        yield port, results


@pytest.mark.parametrize("with_ca", [True, False], ids=["ca-given", "no-ca"])
def test_kafka_tls_uses_the_configured_ca(tls_files: Path, tmp_path: Path,
                                          with_ca: bool) -> None:
    with tls_listener(tls_files) as (port, results):
        env = {"NEWSMON_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
               "NEWSMON_KAFKA__SECURITY_PROTOCOL": "SSL"}
        if with_ca:
            env["NEWSMON_KAFKA__SSL_CAFILE"] = str(tls_files / "ca.crt")
        settings = kafka_settings(tmp_path, env)
        # Not a broker: the client gives up after the handshake, which is what is checked;
        # either way the pipeline's consumer says so as KafkaUnavailable.
        with pytest.raises(KafkaUnavailable) as info:
            snapshot_ranges(settings, "raw", "group")
        if not with_ca:
            assert "TLS" in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert results, "the client never connected"
    if with_ca:
        assert results[0] == "handshake ok"
    else:
        assert results[0].startswith("failed") and "handshake ok" not in results
