"""Every channel against a real local receiver: webhook and Slack (HTTP), e-mail (aiosmtpd),
Telegram (a local Bot API stand-in); which failures are worth a retry."""

from __future__ import annotations

import time

import pytest

from newsmon.pipeline.alerts.channels import DeliveryError, Message, make_notifier
from newsmon.pipeline.alerts.channels.smtp import SmtpChannel
from newsmon.pipeline.alerts.channels.telegram import TelegramChannel
from newsmon.pipeline.alerts.channels.webhook import SlackChannel, WebhookChannel, slack_escape
from tests.alertservers import Recorder, smtp_server
from tests.localhttp import serve

MESSAGE = Message(
    subject="long_range_strike: <script>alert(1)</script> ATACMS & Storm Shadow",
    text="[newsmon] long_range_strike: ATACMS\nscore 1.50 · sources 2\nhttps://x.example/a",
    url="https://x.example/a",
    data={"alert_id": "a1", "rule": "lrs", "title": "ATACMS"},
)


def test_generic_webhook_posts_the_alert_as_json_with_a_bearer_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "t0ken")
    hook = Recorder()
    with serve({"/hook": hook}) as srv:
        notifier = make_notifier(WebhookChannel(url=srv.url("/hook"),
                                               secret_env="HOOK_TOKEN"))
        notifier.send(MESSAGE)
        headers = srv.requests[0][2]
    assert hook.bodies == [{"event": "newsmon.alert", "subject": MESSAGE.subject,
                            "text": MESSAGE.text, "url": MESSAGE.url,
                            "alert": dict(MESSAGE.data)}]
    assert headers["Authorization"] == "Bearer t0ken"


def test_slack_message_escapes_control_characters_and_links_the_title() -> None:
    hook = Recorder()
    with serve({"/slack": hook}) as srv:
        make_notifier(SlackChannel(url=srv.url("/slack"))).send(MESSAGE)
    text = hook.bodies[0]["text"]
    assert text.startswith("*<https://x.example/a|long_range_strike: &lt;script&gt;")
    assert "<script>" not in text and "&amp; Storm Shadow" in text
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


def test_email_reaches_a_real_smtp_server() -> None:
    with smtp_server() as inbox:
        notifier = make_notifier(SmtpChannel(
            host=inbox.host, port=inbox.port, tls="none",
            sender="newsmon@example.org", to=("desk@example.org", "duty@example.org")))
        notifier.send(MESSAGE.__class__(subject="line one\nBcc: evil@example.org",
                                        text=MESSAGE.text, url=MESSAGE.url))
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    # a newline in a feed title must not become a header
    assert mail["Subject"] == "[newsmon] line one Bcc: evil@example.org"
    assert mail["Bcc"] is None
    assert inbox.envelopes == [("newsmon@example.org", ["desk@example.org",
                                                        "duty@example.org"])]
    assert "https://x.example/a" in mail.get_payload()


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
    assert api.bodies == [{"chat_id": "@newsdesk", "text": MESSAGE.text,
                           "disable_web_page_preview": True}]


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
