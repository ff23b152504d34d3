"""Sign-in: every request to the dashboards passes one gate, which knows who asks and
whether their role may (``twin.auth.PERMISSIONS``).

The gate (:class:`Gate`, installed on the app's Flask server before any route):

- answers nothing but the sign-in page without a valid session: a page asked for by a
  browser goes to the sign-in page, anything else gets 401;
- takes the action each route and each callback needs from :data:`ROUTES` and
  :data:`CALLBACKS`, and refuses (403) a role the table does not allow, and any callback
  the table does not name;
- keeps sessions on the server, named by a random cookie (HttpOnly, SameSite=Lax, Secure
  when served over TLS), so that signing out, disabling a user, or an idle spell ends
  them at once; the live pages' own ticks are not activity;
- asks every POST for the session's CSRF token (the ``X-CSRF-Token`` header the app's
  script adds from a cookie only this site can read, or the sign-out form's field);
- rate-limits failed sign-ins, by address and by name;
- with no users yet, on 127.0.0.1, signs in whoever opens the one-time link it printed
  (``?token=...``, as Jupyter does), and prints a new link for the next browser;
- lets a program use the order API (``/api/...``) with HTTP Basic credentials of a user,
  checked on each request and rate-limited as sign-ins are (no cookie, so no CSRF token;
  no ``WWW-Authenticate`` either, so a browser never keeps them).

Callbacks read the signed-in user with :func:`current_user`.
"""

from __future__ import annotations

import getpass
import hmac
import html
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from twin.auth import may
from twin.dashboards.i18n import text

log = logging.getLogger("twin.auth")

#: A session ends after this long without activity (a live page's own ticks are not).
IDLE_S = 30 * 60
#: ... and in any case after one shift.
LONGEST_S = 12 * 3600
#: Failed sign-ins allowed per address, and per name, in :data:`FAILURE_WINDOW_S`.
FAILURES_ALLOWED = 5
FAILURE_WINDOW_S = 15 * 60

COOKIE = "twin_session"
CSRF_COOKIE = "twin_csrf"
FORM_COOKIE = "twin_form"
CSRF_HEADER = "X-CSRF-Token"

#: The role of whoever signs in with the one-time link of a server with no users: the
#: person at the machine that started it, who owns its files anyway.
TOKEN_ROLE = "commander"

#: Every route the dashboards' server has, and the action it needs (None: answered without
#: a session). ``/_dash-update-component`` runs callbacks: each needs its own action, in
#: :data:`CALLBACKS`.
ROUTES: dict[str, str | None] = {
    "/signin": None,
    "/signout": "view",
    "/": "view",
    "/<path:path>": "view",
    "/_dash-layout": "view",
    "/_dash-dependencies": "view",
    "/_dash-update-component": "callback",
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": "view",
    "/assets/<path:filename>": "view",
    "/static/<path:filename>": "view",
    "/_reload-hash": "view",
    "/_favicon.ico": "view",
    "/api/exercise/state": "view",
    "/api/exercise/orders": "exercise_order",
    "/api/exercise/control": "exercise_control",
}

#: Every callback the server runs (by page and function), and the action it needs.
CALLBACKS: dict[str, str] = {
    "dash.update": "view",  # Dash's own: which page the address shows
    "app._menu": "view",
    "state.slider_for": "view",
    "state.follow_live": "view",
    "k3i._play": "view",
    "k3i._tick": "view",
    "k3i._show": "view",
    "k3i._zoom": "view",
    "k3i._details": "view",
    "k3i._acknowledge": "acknowledge",
    "units._show": "view",
    "contingency._show_table": "view",
    "contingency._show_map": "view",
    "exercise._tick": "view",
    "exercise._form_words": "view",
    "exercise._place": "view",
    "exercise._order": "exercise_order",
    "exercise._trainer_words": "view",
    "exercise._control": "exercise_control",
    "state._play": "view",  # a page's play button (state.follow_play)
    "state._advance": "view",
    "replay._show": "view",
    "hall._show": "view",
    "service._show": "view",
}


@dataclass
class Session:
    """A signed-in user, as the server keeps them."""

    user: str
    role: str
    team: str | None
    csrf: str
    since: float
    seen: float
    via: str  # "password" or "link"


def current_user() -> Session | None:
    """The signed-in user of the request being answered (None outside one)."""
    from flask import g, has_request_context

    return getattr(g, "twin_session", None) if has_request_context() else None


def callback_key(fn: Callable[..., Any]) -> str:
    """A callback's name in :data:`CALLBACKS`: its page (or module) and function."""
    return f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"


class Gate:
    """The dashboards' door; see the module docstring.

    Parameters
    ----------
    users
        The users who may sign in (a :class:`twin.auth.users.UserStore`), or None: no users
        yet, and only the one-time link signs in (``announce`` is told each new link).
    secure
        Served over TLS: the cookies are marked Secure.
    idle_s
        How long a session lasts without activity.
    lang
        The sign-in page's language until the visitor picks one.
    clock
        Seconds, for expiry and rate limits (tests pass their own).
    """

    def __init__(
        self,
        users: Any = None,
        *,
        secure: bool = False,
        idle_s: float = IDLE_S,
        lang: str = "id",
        announce: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = users
        self.secure = secure
        self.idle_s = idle_s
        self.lang = lang
        self.announce = announce
        self.clock = clock
        self.token: str | None = None if users is not None else secrets.token_urlsafe(32)
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._enabled_cache: tuple[Any, set[str]] | None = None

    # -- wiring ---------------------------------------------------------------------------

    def install(self, app: Any) -> Gate:
        """Put the gate before every route of the Dash ``app``, and add the sign-in and
        sign-out routes."""
        server = app.server
        server.before_request(self._before)
        server.add_url_rule("/signin", "twin_signin", self._signin, methods=["GET", "POST"])
        server.add_url_rule("/signout", "twin_signout", self._signout, methods=["POST"])
        server.config["twin.gate"] = self
        self._app = app
        return self

    def link(self, base: str) -> str:
        """The one-time sign-in link at ``base`` (``http://127.0.0.1:8050``)."""
        assert self.token is not None
        return f"{base.rstrip('/')}/?token={self.token}"

    # -- every request ----------------------------------------------------------------------

    def _before(self) -> Any:
        from flask import g, request

        rule = request.url_rule.rule if request.url_rule is not None else None
        if rule == "/signin":
            return None
        if self.token is not None and "token" in request.args:
            return self._link_signin()
        auth = request.authorization
        basic = request.path.startswith("/api/") and auth is not None and auth.type == "basic"
        session = self._basic() if basic else self._session()
        if session is None:
            if basic:
                return self._answer(401, "wrong_api")
            return self._unsigned(expired=COOKIE in request.cookies)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not basic:
            sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf", "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                log.warning(
                    "%s: %s %s refused: no CSRF token", session.user, request.method, request.path
                )
                return self._answer(403, "csrf")
        action = ROUTES.get(rule or "")
        what = request.path
        if action == "callback":
            what, action = self._callback_action()
        if action is None or not may(session.role, action):
            log.warning("%s (%s): %s refused", session.user, session.role, what)
            return self._answer(403, "forbidden")
        if not self._tick_only():
            session.seen = self.clock()
        g.twin_session = session
        return None

    def _session(self) -> Session | None:
        from flask import request

        sid = request.cookies.get(COOKIE, "")
        now = self.clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            ended = now - session.seen > self.idle_s or now - session.since > LONGEST_S
            if ended or (session.via == "password" and session.user not in self._enabled()):
                del self._sessions[sid]
                log.info("%s: session ended (%s)", session.user, "idle" if ended else "disabled")
                return None
            return session

    def _basic(self) -> Session | None:
        """The user an API request's Basic credentials name, for this request only."""
        from flask import request

        auth = request.authorization
        assert auth is not None
        name = (auth.username or "").strip().lower()[:64]
        address = request.remote_addr or "?"
        keys = (f"addr:{address}", f"name:{name}")
        if self.users is None or any(self._locked(k) for k in keys):
            return None
        user = self.users.verify(name, (auth.password or "")[:256]) if name else None
        if user is None or user.role == "sensor" or user.disabled:
            for k in keys:
                self._failed(k)
            log.warning("API request as %r from %s: wrong name or password", name, address)
            return None
        now = self.clock()
        return Session(user.name, user.role, user.team, "", now, now, "api")

    def _enabled(self) -> set[str]:
        """The names that may sign in now, read again whenever the users file changes."""
        path = self.users.path
        try:
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
        if self._enabled_cache is None or self._enabled_cache[0] != key:
            names = {u.name for u in self.users.users() if not u.disabled and u.role != "sensor"}
            self._enabled_cache = (key, names)
        return self._enabled_cache[1]

    def _callback_action(self) -> tuple[str, str | None]:
        """The callback a Dash update asks for, and the action it needs (None: a callback
        the table does not name, refused)."""
        from flask import request

        body = request.get_json(silent=True) or {}
        output = body.get("output") if isinstance(body, dict) else None
        entry = self._app.callback_map.get(output) if isinstance(output, str) else None
        fn = entry.get("callback") if entry else None
        if fn is None:
            return f"callback {str(output)[:80]}", None
        key = callback_key(fn)
        return f"callback {key}", CALLBACKS.get(key)

    def _tick_only(self) -> bool:
        """A request only a live page's own timer made: not the officer's activity."""
        from flask import request

        if request.path != "/_dash-update-component":
            return False
        body = request.get_json(silent=True) or {}
        changed = body.get("changedPropIds") if isinstance(body, dict) else None
        return bool(changed) and all(str(p).endswith(".n_intervals") for p in changed)

    def _unsigned(self, *, expired: bool) -> Any:
        from flask import redirect, request

        rule = request.url_rule.rule if request.url_rule else ""
        page = rule in ("/", "/<path:path>") and not request.path.startswith("/_")
        if page and request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            note = "&expired=1" if expired else ""
            return redirect(f"/signin?next={quote(request.full_path.rstrip('?'))}{note}")
        return self._answer(401, "expired" if expired else "unsigned")

    def _answer(self, status: int, key: str) -> Any:
        """The refusal in words, as plain text; as JSON (``{"error": ...}``) to the API."""
        import json

        from flask import Response, request

        said = text(self.lang)[f"gate_{key}"]
        if request.path.startswith("/api/"):
            body = json.dumps({"error": said}, ensure_ascii=False)
            return Response(body, status=status, mimetype="application/json")
        return Response(said + "\n", status=status, mimetype="text/plain")

    # -- signing in and out -----------------------------------------------------------------

    def _link_signin(self) -> Any:
        from flask import redirect, request

        sent = request.args.get("token", "")
        address = request.remote_addr or "?"
        if self._locked(f"addr:{address}"):
            return self._answer(429, "too_many")
        if self.token is None or not hmac.compare_digest(sent.encode(), self.token.encode()):
            self._failed(f"addr:{address}")
            log.warning("sign-in link refused from %s (used or wrong)", address)
            return self._answer(401, "bad_link")
        self.token = secrets.token_urlsafe(32)  # one use: the next browser needs the next link
        if self.announce is not None:
            self.announce(self.token)
        name = _local_name()
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
        target = request.path + (
            "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in args) if args else ""
        )
        log.info("%s signed in with the one-time link from %s", name, address)
        return self._start(redirect(target), name, TOKEN_ROLE, None, "link")

    def _signin(self) -> Any:
        from flask import Response, redirect, request

        lang = request.args.get("lang") or request.form.get("lang") or self.lang
        lang = lang if lang in ("id", "en") else self.lang
        target = _safe_next(request.values.get("next", "/"))
        if request.method == "GET":
            note = "expired" if request.args.get("expired") else ""
            note = "signed_out" if request.args.get("signed_out") else note
            return self._form(lang, target, note)
        form_token = request.cookies.get(FORM_COOKIE, "")
        if not form_token or not hmac.compare_digest(
            request.form.get("csrf", "").encode(), form_token.encode()
        ):
            return self._form(lang, target, "form_stale", status=400)
        name = request.form.get("name", "").strip().lower()[:64]
        password = request.form.get("password", "")[:256]
        address = request.remote_addr or "?"
        keys = (f"addr:{address}", f"name:{name}")
        if any(self._locked(k) for k in keys):
            log.warning("sign-in as %r from %s refused: too many failures", name, address)
            return self._form(lang, target, "too_many", status=429)
        user = self.users.verify(name, password) if self.users is not None and name else None
        if user is None or user.role == "sensor":
            for k in keys:
                self._failed(k)
            log.warning("sign-in as %r from %s failed", name, address)
            return self._form(lang, target, "wrong", status=401)
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)
        log.info("%s (%s) signed in from %s", user.name, user.role, address)
        response: Response = redirect(target)
        return self._start(response, user.name, user.role, user.team, "password")

    def _start(self, response: Any, user: str, role: str, team: str | None, via: str) -> Any:
        """A new session (a new id: never one the browser brought), its cookies set."""
        now = self.clock()
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            for old in [k for k, s in self._sessions.items() if now - s.seen > self.idle_s]:
                del self._sessions[old]
            self._sessions[sid] = Session(user, role, team, csrf, now, now, via)
        cookie = {"path": "/", "secure": self.secure}
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Lax", **cookie)
        # read by the app's script, which sends it back as a header: a page of another
        # site can neither read it nor make the browser send the header
        response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="Strict", **cookie)
        response.delete_cookie(FORM_COOKIE, path="/")
        return response

    def _signout(self) -> Any:
        from flask import redirect, request

        sid = request.cookies.get(COOKIE, "")
        with self._lock:
            session = self._sessions.pop(sid, None)
        if session is not None:
            log.info("%s signed out", session.user)
        response = redirect("/signin?signed_out=1")
        response.delete_cookie(COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    def _form(self, lang: str, target: str, note: str, status: int = 200) -> Any:
        from flask import Response

        words = text(lang)
        token = secrets.token_urlsafe(32)
        e = html.escape
        message = (
            f'<p class="note" id="signin-note">{e(words["signin_" + note])}</p>' if note else ""
        )
        other = "en" if lang == "id" else "id"
        if self.users is None:  # no users: only the printed link signs in
            body = f'<p id="signin-link-only">{e(words["signin_link_only"])}</p>'
        else:
            body = f"""<form method="post" action="/signin">
<input type="hidden" name="csrf" value="{e(token)}">
<input type="hidden" name="next" value="{e(target)}">
<input type="hidden" name="lang" value="{e(lang)}">
<label>{e(words["signin_name"])}<input name="name" id="signin-name" autocomplete="username" required autofocus></label>
<label>{e(words["signin_password"])}<input name="password" id="signin-password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="signin-submit">{e(words["signin_submit"])}</button>
</form>"""
        page = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{e(words["signin_title"])} · smart-policing-twin</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>{_STYLE}</style></head>
<body><main>
<h1>{e(words["signin_title"])}</h1>
<p class="sub">smart-policing-twin · K3i</p>
{message}{body}
<p class="lang"><a href="/signin?lang={other}&amp;next={e(quote(target))}" id="signin-lang">{e(text(other)["signin_in_lang"])}</a></p>
</main></body></html>"""
        response = Response(page, status=status, mimetype="text/html")
        response.set_cookie(
            FORM_COOKIE, token, httponly=True, samesite="Strict", path="/", secure=self.secure
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- rate limit ---------------------------------------------------------------------------

    def _locked(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            times = self._failures.get(key)
            while times and now - times[0] > FAILURE_WINDOW_S:
                times.popleft()
            return bool(times) and len(times) >= FAILURES_ALLOWED

    def _failed(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, deque()).append(self.clock())


def _safe_next(target: str) -> str:
    """Where to go after signing in: a path of this site only (never ``//elsewhere``)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _local_name() -> str:
    """The person at the machine, as the record names them: ``local:<login>``."""
    try:
        return f"local:{getpass.getuser()}"[:60]
    except (KeyError, OSError):
        return "local"


_STYLE = (
    'body{font-family:"DejaVu Sans",Arial,sans-serif;background:#fafafa;color:#212121;margin:0}'
    "main{max-width:380px;margin:10vh auto;background:white;padding:24px;border-radius:6px;"
    "border-top:6px solid #1a237e}label{display:block;margin:12px 0}"
    "input{display:block;width:100%;padding:6px;box-sizing:border-box;margin-top:4px}"
    "button{margin-top:8px;padding:8px 16px;background:#1a237e;color:white;border:0}"
    ".note{background:#fff3e0;padding:8px}.sub{color:#555;margin-top:-10px}"
)
