"""Every channel against a real local receiver: webhook and Slack (HTTP), e-mail (aiosmtpd),
Telegram (a local Bot API stand-in); which failures are worth a retry; each channel renders
the same alert content in its own form."""

from __future__ import annotations

import json
import time

import pytest

from newsmon.pipeline.alerts.channels import DeliveryError, Message, make_notifier
from newsmon.pipeline.alerts.channels.smtp import SmtpChannel
from newsmon.pipeline.alerts.channels.telegram import TelegramChannel
from newsmon.pipeline.alerts.channels.webhook import SlackChannel, WebhookChannel, slack_escape
from newsmon.pipeline.alerts.content import story_content
from newsmon.pipeline.alerts.delivery import message_for
from tests.alertservers import Recorder, SignedReceiver, smtp_server
from tests.localhttp import serve
from tests.pipeline.alerts import samples

HOSTILE_TITLE = "<script>alert(1)</script> ATACMS & Storm Shadow"


def _message() -> Message:
    doc, articles = samples.story()
    return message_for(story_content({**doc, "title": HOSTILE_TITLE}, articles),
                       "alert.created")


MESSAGE = _message()


def test_generic_webhook_posts_the_signed_v1_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    hook = SignedReceiver(secret="s3cret")
    with serve({"/hook": hook}) as srv:
        notifier = make_notifier(WebhookChannel(url=srv.url("/hook"),
                                               secret_env="HOOK_SECRET"))
        notifier.send(MESSAGE)
    assert [r[2] for r in hook.requests] == ["ok"]
    headers, payload, _ = hook.requests[0]
    assert payload["schema_version"] == 1 and payload["event"] == "alert.created"
    assert payload["delivery_id"] == MESSAGE.delivery_id == headers["X-Newsmon-Delivery"]
    assert payload["alert"]["title"] == HOSTILE_TITLE
    # the secret travels only as a key of the signature, never in a header
    assert "s3cret" not in json.dumps(headers) and "Authorization" not in headers


def test_a_receiver_with_another_secret_refuses_the_webhook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "not-the-receivers")
    with serve({"/hook": SignedReceiver(secret="s3cret")}) as srv:
        notifier = make_notifier(WebhookChannel(url=srv.url("/hook"),
                                               secret_env="HOOK_SECRET"))
        with pytest.raises(DeliveryError) as err:
            notifier.send(MESSAGE)
    assert err.value.rejected and not err.value.retryable
    assert "HTTP 401" in str(err.value) and "bad signature" in str(err.value)


def test_a_webhook_message_without_alert_content_is_refused_before_sending() -> None:
    hook = Recorder()
    with serve({"/hook": hook}) as srv:
        notifier = make_notifier(WebhookChannel(url=srv.url("/hook")))
        with pytest.raises(DeliveryError, match="without alert content"):
            notifier.send(Message(subject="s", text="t"))
    assert hook.bodies == []


def test_slack_gets_blocks_with_the_topic_name_and_the_link_once() -> None:
    hook = Recorder()
    with serve({"/slack": hook}) as srv:
        make_notifier(SlackChannel(url=srv.url("/slack"))).send(MESSAGE)
    body = hook.bodies[0]
    raw = json.dumps(body)
    assert samples.TOPIC not in raw and "Long range strike" in raw
    assert raw.count(MESSAGE.url) == 1
    assert "<script>" not in raw and "&lt;script&gt;" in raw and "&amp; Storm Shadow" in raw
    link = body["blocks"][1]["text"]["text"]
    assert link.startswith(f"*<{MESSAGE.url}|&lt;script&gt;")
    evidence = body["blocks"][-1]["text"]["text"]
    assert "*permission*" in evidence and "«" not in evidence
    assert slack_escape("a<b>&c") == "a&lt;b&gt;&amp;c"
@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True),
                                                   (400, False), (401, False), (404, False)])
def test_http_failures_say_whether_a_retry_may_help(status: int, retryable: bool) -> None:
    with serve({"/hook": Recorder(statuses=[status])}) as srv:
        notifier = make_notifier(WebhookChannel(url=srv.url("/hook")))
        with pytest.raises(DeliveryError) as err:
            notifier.send(MESSAGE)
    assert err.value.retryable is retryable


def test_a_hanging_receiver_costs_at_most_the_channel_timeout() -> None:
    with serve({"/slow": Recorder(delay_s=3)}) as srv:
        notifier = make_notifier(WebhookChannel(url=srv.url("/slow"),
                                               timeout_s=0.5))
        started = time.monotonic()
        with pytest.raises(DeliveryError) as err:
            notifier.send(MESSAGE)
        elapsed = time.monotonic() - started
    assert err.value.retryable and elapsed < 2


def test_email_reaches_a_real_smtp_server_as_html_and_text() -> None:
    with smtp_server() as inbox:
        notifier = make_notifier(SmtpChannel(
            host=inbox.host, port=inbox.port, tls="none",
            sender="newsmon@example.org", to=("desk@example.org", "duty@example.org")))
        notifier.send(Message(subject="line one\nBcc: evil@example.org", text=MESSAGE.text,
                              url=MESSAGE.url))
        notifier.send(MESSAGE)
    assert len(inbox.messages) == 2
    mail = inbox.messages[0]
    # a newline in a feed title must not become a header
    assert mail["Subject"] == "[newsmon] line one Bcc: evil@example.org"
    assert mail["Bcc"] is None
    assert inbox.envelopes[0] == ("newsmon@example.org", ["desk@example.org",
                                                          "duty@example.org"])
    assert MESSAGE.url in mail.get_payload()
    alert_mail = inbox.messages[1]
    assert alert_mail.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode()
             for p in alert_mail.get_payload()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "«permission»" in parts["text/plain"] and "BBC News" in parts["text/plain"]
    html = parts["text/html"]
    assert "<mark>permission</mark>" in html and "&lt;script&gt;" in html
    assert "<script>" not in html and "public broadcaster" in html


def test_smtp_4xx_is_retryable_and_5xx_is_not() -> None:
    with smtp_server() as inbox:
        inbox.fail_with = ["451 try later", "554 no"]
        notifier = make_notifier(SmtpChannel(host=inbox.host, port=inbox.port,
                                               tls="none", sender="n@example.org",
                                               to=("d@example.org",)))
        with pytest.raises(DeliveryError) as first:
            notifier.send(MESSAGE)
        with pytest.raises(DeliveryError) as second:
            notifier.send(MESSAGE)
    assert first.value.retryable and not second.value.retryable


def test_smtp_server_down_is_a_retryable_failure() -> None:
    with smtp_server() as inbox:
        host, port = inbox.host, inbox.port
    notifier = make_notifier(SmtpChannel(host=host, port=port, tls="none",
                                           sender="n@example.org", to=("d@example.org",),
                                           timeout_s=2))
    with pytest.raises(DeliveryError) as err:
        notifier.send(MESSAGE)
    assert err.value.retryable


def test_telegram_bot_api_with_a_configurable_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TOKEN", "123:secret")
    api = Recorder()
    with serve({"/bot123:secret/sendMessage": api}) as srv:
        notifier = make_notifier(TelegramChannel(url=srv.url(""),
                                               chat_id="@newsdesk", secret_env="TG_TOKEN"))
        notifier.send(MESSAGE)
    sent = api.bodies[0]
    assert (sent["chat_id"], sent["parse_mode"], sent["disable_web_page_preview"]) == (
        "@newsdesk", "HTML", True)
    text = sent["text"]
    assert "<script>" not in text and "&lt;script&gt;" in text and "&amp; Storm" in text
    assert f'<a href="{MESSAGE.url}">' in text and "<b>permission</b>" in text


def test_telegram_errors_never_show_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TOKEN", "123:secret")
    with serve({"/bot123:secret/sendMessage": Recorder(statuses=[401])}) as srv:
        notifier = make_notifier(TelegramChannel(url=srv.url(""),
                                               chat_id="1", secret_env="TG_TOKEN"))
        with pytest.raises(DeliveryError) as err:
            notifier.send(MESSAGE)
    assert "secret" not in str(err.value) and not err.value.retryable


def test_telegram_without_its_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TG_TOKEN", raising=False)
    with pytest.raises(ValueError, match="TG_TOKEN"):
        make_notifier(TelegramChannel(chat_id="1", secret_env="TG_TOKEN"))


def test_channel_config_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="needs host, sender, to"):
        SmtpChannel()
    with pytest.raises(ValueError, match="needs chat_id, secret_env"):
        TelegramChannel()
