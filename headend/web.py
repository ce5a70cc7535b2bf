"""The operator's web app and the tenants' pages (Flask, server-rendered:
forms and inline SVG, no JavaScript). Every change is a POST that carries the
session's CSRF token and needs the operator role; the service journals it
before anything is sent to a meter."""

import base64
import functools
import hmac
import json
import re
import secrets
import time
from pathlib import Path

from flask import Flask, abort, g, redirect, render_template, request, url_for

from headend import auth, charts, usage
from headend.journal import JournalError, new_ref

SESSION_COOKIE, LOGIN_COOKIE = "he_session", "he_login"
AMOUNT = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")
RELAY = ("open", "close", "auto")
LOCAL_PATH = re.compile(r"^/[A-Za-z0-9._-][A-Za-z0-9/._-]*$")
CHART_POINTS = 400


def money(minor, decimals=2):
    if minor is None:
        return "-"
    sign, minor = ("-" if minor < 0 else ""), abs(int(minor))
    return "%s%d.%0*d" % (sign, minor // 10 ** decimals, decimals, minor % 10 ** decimals)


def kwh(mwh):
    return "-" if mwh is None else "%d.%03d" % (mwh // 1000000, mwh % 1000000 // 1000)


def ago(at, now=None):
    if not at:
        return "never"
    s = int((now or time.time()) - at)
    return "%d s ago" % s if s < 120 else "%d min ago" % (s // 60) if s < 7200 else \
        "%d h ago" % (s // 3600) if s < 172800 else "%d days ago" % (s // 86400)


def parse_amount(text):
    """'12.5' -> 1250 minor units, with integers only."""
    m = AMOUNT.match((text or "").strip())
    if not m:
        raise ValueError("an amount like 10 or 12.50")
    v = int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
    if not 0 < v <= 0xFFFFFFFF:
        raise ValueError("an amount between 0.01 and 42949672.95")
    return v


def create_app(service, secure_cookies=False):
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"),
                static_folder=str(Path(__file__).parent / "static"))
    users = auth.Users(service.db)
    store, journal = service.store, service.journal
    app.jinja_env.filters.update(money=money, kwh=kwh, ago=ago,
                                 when=lambda t: time.strftime("%Y-%m-%d %H:%M:%S",
                                                              time.localtime(t)) if t else "-")
    cookie = {"httponly": True, "samesite": "Strict", "secure": secure_cookies}
    notes = {}      # a session's CSRF token -> what its last action did (not in the URL)

    @app.before_request
    def who():
        g.user = users.session(request.cookies.get(SESSION_COOKIE))

    @app.after_request
    def headers(resp):
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:"
        resp.headers["Referrer-Policy"] = "no-referrer"     # tenant links stay private
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def refuse(code, why):
        return render_template("error.html", code=code, why=why), code

    def needs(role=None):
        """A page for logged-in users; a POST also needs the session's CSRF
        token and, with role, that role."""
        def wrap(f):
            @functools.wraps(f)
            def inner(*a, **kw):
                if g.user is None:
                    if request.method == "POST":
                        return refuse(401, "Log in first: nothing was changed.")
                    return redirect(url_for("login", next=request.path))
                if request.method == "POST":
                    sent = request.form.get("csrf", "")
                    if not hmac.compare_digest(sent.encode(), g.user["csrf"].encode()):
                        return refuse(403, "CSRF token missing or wrong: nothing was "
                                           "changed. Reload the page and try again.")
                if role and g.user["role"] != role:
                    return refuse(403, "Your role (%s) cannot do this: nothing was "
                                       "changed." % g.user["role"])
                return f(*a, **kw)
            return inner
        return wrap

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error, code = None, 200
        if request.method == "POST":
            sent, want = request.form.get("csrf", ""), request.cookies.get(LOGIN_COOKIE, "")
            if not want or not hmac.compare_digest(sent.encode(), want.encode()):
                error, code = "The login form expired: try again.", 403
            else:
                try:
                    sid, _ = users.login(request.form.get("name", ""),
                                         request.form.get("password", ""))
                except auth.AuthError as e:
                    error, code = str(e), 401
                else:
                    nxt = request.args.get("next", "")     # a page of this site only
                    resp = redirect(nxt if LOCAL_PATH.match(nxt) else url_for("meters"))
                    resp.set_cookie(SESSION_COOKIE, sid, max_age=auth.SESSION_S, **cookie)
                    resp.delete_cookie(LOGIN_COOKIE)
                    return resp
        token = secrets.token_urlsafe(24)
        resp = app.make_response((render_template("login.html", csrf=token, error=error),
                                  code))
        resp.set_cookie(LOGIN_COOKIE, token, max_age=600, **cookie)
        return resp

    @app.route("/logout", methods=["POST"])
    @needs()
    def logout():
        users.logout(request.cookies.get(SESSION_COOKIE))
        resp = redirect(url_for("login"))
        resp.delete_cookie(SESSION_COOKIE)
        return resp

    @app.route("/")
    @app.route("/meters")
    @needs()
    def meters():
        return render_template("meters.html", meters=store.meters(), now=time.time(),
                               stats=service.stats())

    @app.route("/api/stats")
    @needs()
    def stats():
        """The ingest's figures (messages by kind, queue, receive-to-stored lag)."""
        return service.stats()

    def meter_or_404(mid):
        m = store.meter(mid)
        if m is None:
            abort(404)
        return m

    @app.route("/meters/<mid>")
    @needs()
    def meter(mid):
        m = meter_or_404(mid)
        now = time.time()
        rs = store.readings(mid, usage.day_start(now, 13))
        week = [r for r in rs if r[0] >= now - 7 * usage.DAY]
        step = max(1, len(week) // CHART_POINTS)
        daily = [(d, v / 1000000) for d, v in usage.daily(rs, now)]
        tariffs = [a for a in journal.actions(mid) if a["cmd"] == "tariff"]
        version = max([json.loads(a["args"][1]).get("version", 1) for a in tariffs] + [1])
        return render_template(
            "meter.html", m=m, now=now, vends=journal.list(mid, newest=20),
            actions=journal.actions(mid, newest=20), events=store.events(mid, 50),
            tokens=store.tokens(mid), daily=charts.bars(daily, "kWh"),
            credit=charts.line([(a, c / 100) for a, c, _ in week[::step]], ""),
            summary=usage.summary(rs, m["credit"], now), flash=notes.pop(g.user["csrf"], None),
            vend_ref=new_ref(), tariff=json.dumps({"version": version + 1, "activate": 0, "kind": "flat",
                               "price": 2000, "standing_per_day": 0}),
            tenant=url_for("tenant", token=m["tenant"], _external=True))

    def done(mid, what):
        notes[g.user["csrf"]] = what        # shown once, on the page it redirects to
        return redirect(url_for("meter", mid=mid))

    def meter_action(f):
        """An operator's change to one meter: bad input is a 400 that changes nothing."""
        @app.route("/meters/<mid>/" + f.__name__, methods=["POST"], endpoint=f.__name__)
        @needs("operator")
        @functools.wraps(f)
        def inner(mid):
            meter_or_404(mid)
            try:
                return done(mid, f(mid, request.form, g.user["name"]))
            except (ValueError, JournalError) as e:
                return refuse(400, "%s: nothing was changed." % e)
        return inner

    @meter_action
    def vend(mid, form, by):
        # the form's own reference: a double click or a resubmit is the same vend
        row = service.vend(mid, parse_amount(form.get("amount")), by, form.get("ref") or None)
        return "Vend %s of %s is %s." % (row["ref"], money(row["amount"]), row["status"])

    @meter_action
    def cancel(mid, form, by):
        row = service.cancel(mid, form.get("ref", ""), by)
        return "Cancel of vend %s sent (command %d)." % (row["args"][0], row["id"])

    @meter_action
    def token(mid, form, by):
        kind = form.get("type", "add")
        value = form.get("value", "0").strip()
        if not value.isdigit() or len(value) > 6:
            raise ValueError("a token value is a whole number (0-999999)")
        digits = service.token(mid, kind, int(value), by, form.get("extended") == "1")
        return "Token %s (%s %s): give it to the tenant." % (digits, kind, value)

    @meter_action
    def tariff(mid, form, by):
        try:
            t = json.loads(form.get("tariff", ""))
        except ValueError:
            raise ValueError("the tariff is not JSON")
        if not isinstance(t, dict) or not isinstance(t.get("version"), int):
            raise ValueError("a tariff is a JSON object with an integer version "
                             "(docs/tariffs.md)")
        row = service.act(mid, "tariff", ["set", json.dumps(t)], by)
        return "Tariff version %d sent (command %d)." % (t["version"], row["id"])

    @meter_action
    def relay(mid, form, by):
        what = form.get("action")
        if what not in RELAY:
            raise ValueError("relay action is one of %s" % ", ".join(RELAY))
        row = service.act(mid, "relay", [what], by)
        return "Relay %s sent (command %d)." % (what, row["id"])

    @meter_action
    def clear(mid, form, by):
        row = service.act(mid, "clear", [], by)
        return "Clear alarms sent (command %d)." % row["id"]

    @app.route("/provision", methods=["GET", "POST"])
    @needs("operator")
    def provision():
        if request.method == "GET":
            return render_template("provision.html", secrets=None)
        try:
            pin = request.form.get("pin") or None
            s = store.provision(request.form.get("id") or None,
                                request.form.get("label", "")[:64], pin)
        except (ValueError, JournalError) as e:
            return refuse(400, "%s: nothing was changed." % e)
        text = json.dumps(s, indent=1)
        return render_template("provision.html", secrets=text, mid=s["meter_id"],
                               href="data:application/json;base64,"
                               + base64.b64encode(text.encode()).decode())

    @app.route("/t/<token>")
    def tenant(token):
        m = store.by_tenant(token) if len(token) >= 20 else None
        if m is None:
            return refuse(404, "No such meter page.")
        now = time.time()
        rs = store.readings(m["id"], min(usage.month_start(now), now - 7 * usage.DAY))
        topups = [v for v in journal.list(m["id"], newest=10) if v["status"] == "applied"]
        return render_template("tenant.html", m=m, s=usage.summary(rs, m["credit"], now),
                               topups=topups[:5], now=now)

    @app.errorhandler(404)
    def not_found(e):
        return refuse(404, "Not found.")

    return app
