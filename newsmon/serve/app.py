"""The alert inbox: a Starlette application over the document store (``newsmon serve``).

Pages (all behind a login or an API key, auth.py):

* ``/``: the alerts of a window, newest first, filtered by status (open by default), topic,
  language and source label;
* ``/alerts/{alert_id}``: the story page: the alert, every stored copy of its story with its
  source, the sources, and one timeline of copies, deliveries and analysts' actions;
* ``POST /alerts/{alert_id}/action``: confirm, false positive (with a reason), acknowledge,
  mute the story, mute a source for N hours (feedback.py); CSRF-checked for sessions.

Kibana stays the place for dashboards; this is where alerts are answered.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from newsmon.ops.report import parse_duration
from newsmon.ops.report_html import distinct_snippets, fmt_time, safe_href, time_of
from newsmon.pipeline.alerts.mutes import mutes_on
from newsmon.pipeline.store import DocumentStore
from newsmon.serve.auth import Credentials, csrf_ok, csrf_token
from newsmon.serve.feedback import ActionError, record_action, status_of
from newsmon.serve.feedback import Request as ActionRequest
from newsmon.serve.measure import source_labels

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

TEMPLATES = Path(__file__).with_name("templates")
#: Alerts shown on one inbox page; the filters narrow it down.
PAGE = 200
STATUSES = ("open", "acknowledged", "confirmed", "false_positive", "all")
WINDOWS = ("24h", "7d", "30d", "90d")


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters.update(href=safe_href, when=lambda v: fmt_time(v if isinstance(v, datetime)
                                                               else time_of({"t": v}, "t")))
    return Jinja2Templates(env=env)


def create_app(store: DocumentStore, credentials: Credentials, *, secret: str | None = None,
               https_only: bool = False,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Starlette:
    """The inbox over ``store``. ``secret`` signs sessions (random when None: sessions end
    with the process); ``https_only`` marks the session cookie Secure (behind TLS)."""
    templates = _templates()

    def user_of(request: Request) -> str | None:
        by_key = credentials.api_user(request.headers.get("authorization"))
        if by_key is not None:
            return by_key
        user = request.session.get("user")
        return user if isinstance(user, str) and user in credentials.users else None

    def refuse(request: Request) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login?" + urlencode({"next": request.url.path}), 303)
        return PlainTextResponse("authentication required", 401,
                                 headers={"WWW-Authenticate": 'Bearer realm="newsmon"'})

    def page(request: Request, name: str, context: JsonDict, status: int = 200) -> Response:
        context = {"user": user_of(request), "csrf": csrf_token(request.session),
                   "flash": request.session.pop("flash", None), **context}
        response = templates.TemplateResponse(request, name, context, status_code=status)
        # The pages hold alerts: not cached, not framed, no referrer to linked sites.
        response.headers.update({"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                 "Referrer-Policy": "no-referrer",
                                 "X-Content-Type-Options": "nosniff"})
        return response

    async def login(request: Request) -> Response:
        nxt = request.query_params.get("next", "/")
        nxt = nxt if nxt.startswith("/") and not nxt.startswith("//") else "/"
        if request.method == "GET":
            return page(request, "login.html", {"next": nxt, "error": ""})
        form = await request.form()
        if not csrf_ok(request.session, form.get("csrf")):
            return PlainTextResponse("CSRF token missing or wrong", 403)
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        if not credentials.login(name, password):
            log.warning("inbox: failed login for %r", name[:64])
            return page(request, "login.html", {"next": nxt, "error": "Wrong name or password."},
                        status=401)
        request.session.clear()  # a fresh session (and CSRF token) on login
        request.session["user"] = name
        log.info("inbox: %s logged in", name)
        return RedirectResponse(nxt, 303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request.session, form.get("csrf")):
            return PlainTextResponse("CSRF token missing or wrong", 403)
        request.session.clear()
        return RedirectResponse("/login", 303)

    async def inbox(request: Request) -> Response:
        if user_of(request) is None:
            return refuse(request)
        q = request.query_params
        chosen = {k: q.get(k, "") for k in ("topic", "lang", "label")}
        status = q.get("status", "open")
        status = status if status in STATUSES else "open"
        window = q.get("since", "7d")
        try:
            span = parse_duration(window)
        except ValueError:
            window, span = "7d", parse_duration("7d")
        now = clock()
        docs = [d for d in store.scan("alerts", since=now - span, until=None)
                if d.get("kind", "story") == "story"]
        options = {
            "topic": sorted({str(d.get("topic")) for d in docs if d.get("topic")}),
            "lang": sorted({str(x) for d in docs for x in d.get("languages") or ()}),
            "label": sorted({x for d in docs for x in source_labels(d)}),
        }
        shown = [d for d in docs
                 if (status == "all" or status_of(d) == status)
                 and (not chosen["topic"] or d.get("topic") == chosen["topic"])
                 and (not chosen["lang"] or chosen["lang"] in (d.get("languages") or ()))
                 and (not chosen["label"] or chosen["label"] in source_labels(d))]
        shown.sort(key=lambda d: str(d.get("created_at")), reverse=True)
        rows = [{"doc": d, "status": status_of(d), "labels": source_labels(d),
                 "snippet": next(iter(distinct_snippets(d.get("snippets") or ())), "")}
                for d in shown[:PAGE]]
        return page(request, "inbox.html", {
            "rows": rows, "total": len(shown), "options": options, "chosen": chosen,
            "status": status, "statuses": STATUSES, "window": window,
            "windows": sorted({*WINDOWS, window}, key=lambda w: parse_duration(w))})

    async def story(request: Request) -> Response:
        if user_of(request) is None:
            return refuse(request)
        alert_id = request.path_params["alert_id"]
        current = store.get("alerts", alert_id)
        if current is None:
            return PlainTextResponse(f"no alert {alert_id}", 404)
        return page(request, "story.html", story_context(store, current.source, clock()))

    async def action(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return refuse(request)
        form = await request.form()
        by_key = credentials.api_user(request.headers.get("authorization")) is not None
        if not by_key and not csrf_ok(request.session, form.get("csrf")):
            log.warning("inbox: CSRF check failed for %s on %s", user, request.url.path)
            return PlainTextResponse("CSRF token missing or wrong", 403)
        alert_id = request.path_params["alert_id"]
        hours_raw = str(form.get("hours", "")).strip()
        try:
            hours = float(hours_raw) if hours_raw else None
            req = ActionRequest(action=str(form.get("action", "")), by=user,
                                reason=str(form.get("reason", "")), hours=hours,
                                source_id=str(form.get("source_id", "")))
            record_action(store, alert_id, req, clock())
        except KeyError:
            return PlainTextResponse(f"no alert {alert_id}", 404)
        except ActionError as exc:
            if by_key:
                return PlainTextResponse(str(exc), 400)
            request.session["flash"] = f"Not done: {exc}"
            return RedirectResponse(f"/alerts/{alert_id}", 303)
        except ValueError:
            return PlainTextResponse("hours must be a number", 400)
        if by_key:
            return PlainTextResponse("ok")
        request.session["flash"] = f"{req.action.replace('_', ' ')}: recorded"
        return RedirectResponse(f"/alerts/{alert_id}", 303)

    routes = [
        Route("/", inbox),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/alerts/{alert_id}", story),
        Route("/alerts/{alert_id}/action", action, methods=["POST"]),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=secret or secrets.token_urlsafe(32),
                             session_cookie="newsmon_inbox", same_site="strict",
                             https_only=https_only, max_age=12 * 3600)]
    return Starlette(routes=routes, middleware=middleware)


def story_context(store: DocumentStore, alert: Mapping[str, Any], now: datetime) -> JsonDict:
    """What the story page shows: the alert, its copies, sources, timeline and mutes."""
    story_id = alert.get("story_id")
    copies = (store.find_terms("articles", "story_id", [str(story_id)], size=500)
              if story_id else [])
    if not copies and alert.get("doc_ids"):
        copies = store.find_terms("articles", "doc_id", [str(d) for d in alert["doc_ids"]],
                                  size=500)
    copies.sort(key=lambda c: str(c.get("published_at") or c.get("first_seen_at") or ""))
    sources: dict[str, JsonDict] = {}
    for c in copies:
        src = c.get("source") or {}
        sid = str(src.get("id", ""))
        entry = sources.setdefault(sid, {"id": sid, "name": src.get("name") or sid,
                                         "country": src.get("country") or "",
                                         "type": src.get("type") or "",
                                         "label": src.get("kind") or "",
                                         "copies": 0})
        entry["copies"] += 1
    for sid in alert.get("source_ids") or ():
        sources.setdefault(str(sid), {"id": str(sid), "name": str(sid), "country": "",
                                      "type": "", "label": "", "copies": 0})
    events: list[tuple[datetime, str, str]] = []
    for c in copies:
        name = (c.get("source") or {}).get("name") or (c.get("source") or {}).get("id", "")
        t = time_of(c, "published_at") or time_of(c, "first_seen_at")
        if t:
            events.append((t, "published", f"{name}: {c.get('title', '')}"))
    for key, what in (("created_at", "alert raised"), ("updated_at", "alert updated")):
        t = time_of(alert, key)
        if t:
            events.append((t, what, str(alert.get("rule", ""))))
    for d in alert.get("deliveries") or ():
        t = time_of(d, "at")
        if t:
            events.append((t, f"{d.get('status')}", f"{d.get('channel')} {d.get('error') or ''}"))
    for h in (alert.get("feedback") or {}).get("history") or ():
        t = time_of(h, "at")
        if t:
            detail = " ".join(str(h[k]) for k in ("target", "reason") if h.get(k))
            events.append((t, str(h.get("action", "")).replace("_", " "),
                           f"by {h.get('by')}" + (f": {detail}" if detail else "")))
    events.sort(key=lambda ev: ev[0])
    return {
        "alert": alert, "status": status_of(alert), "copies": copies,
        "sources": sorted(sources.values(), key=lambda s: (-s["copies"], s["name"])),
        "timeline": events, "labels": source_labels(alert),
        "snippets": distinct_snippets(alert.get("snippets") or ()),
        "mutes": [m for m in mutes_on(alert) if m.until > now],
        "feedback": alert.get("feedback") or {},
    }
