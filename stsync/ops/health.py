"""`stsync health`: each check of the mirror, the push and the workflows, judged against thresholds, and the
report in the forms monitoring reads (a Nagios plugin's lines, JSON, node_exporter's textfile).

A check that cannot run is CRITICAL with its reason, never left out; when the database itself cannot be
reached, every check that needs it is UNKNOWN. The checks read through indexes only (``queries.sql``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from stsync.db.connect import connect_sync, error_for
from stsync.db.migrations import pending_on
from stsync.errors import StsyncError
from stsync.sqlfile import load
from stsync.sync.repository import run_lock_name

Q = load("ops")


class Status(enum.IntEnum):
    """A check's verdict; the values are the Nagios plugin exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Metric:
    """One figure of a check: a perfdata item and a Prometheus gauge (``stsync_<name>``)."""

    name: str
    value: float
    unit: str = ""  # 's' for seconds (Nagios perfdata's unit)
    warning: float | None = None
    critical: float | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass
class Check:
    name: str
    status: Status
    summary: str
    metrics: list[Metric] = field(default_factory=list)


@dataclass(frozen=True)
class StreamHealth:
    name: str
    every_minutes: float
    status: Status
    last_success: datetime | None
    age_seconds: float | None  # since the last success; None: never
    last_status: str | None  # of the newest finished run: completed | partial | failed
    last_error: str | None = None


@dataclass(frozen=True)
class Limits:
    """The thresholds (``health:`` in the config): WARNING at the first of each pair, CRITICAL at the second."""

    quarantine_warning: int = 1
    quarantine_critical: int = 1000
    quarantine_growth_critical: int = 100
    ghl_dead_warning: int = 1
    ghl_dead_critical: int = 100
    ghl_pending_warning_minutes: float = 30
    ghl_pending_critical_minutes: float = 180
    events_pending_warning_minutes: float = 15
    events_pending_critical_minutes: float = 60
    steps_late_warning_minutes: float = 15
    steps_late_critical_minutes: float = 60
    events_dead_warning: int = 1
    events_dead_critical: int = 100
    lock_max_minutes: float = 120


@dataclass(frozen=True)
class HealthSettings:
    dsn: str
    tenant_id: int | None  # None: ServiceTitan is not configured (the sync lock cannot be named)
    streams: tuple[tuple[str, float], ...]  # the streams a sync runs, with how often (minutes)
    location_id: str | None = None  # the GHL location the push works for; None: GHL is not configured
    limits: Limits = field(default_factory=Limits)
    connect_timeout: float = 10


@dataclass
class Report:
    checks: list[Check]
    streams: list[StreamHealth] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)  # what --heal did, one line each

    @property
    def status(self) -> Status:
        """CRITICAL over UNKNOWN over WARNING over OK: a known failure is the one to page about."""
        found = {c.status for c in self.checks}
        for status in (Status.CRITICAL, Status.UNKNOWN, Status.WARNING):
            if status in found:
                return status
        return Status.OK

    def lines(self) -> list[str]:
        """The Nagios plugin output: ``STSYNC <STATE> - <summary>|<perfdata>``, then one line per check and what
        --heal did."""
        bad = [c for c in self.checks if c.status != Status.OK]
        summary = "; ".join(f"{c.name}: {c.summary}" for c in bad) if bad else f"{len(self.checks)} checks OK"
        perf = " ".join(_perfdata(m) for c in self.checks for m in c.metrics)
        first = f"STSYNC {self.status.name} - {summary}" + (f"|{perf}" if perf else "")
        return [first, *(f"{c.status.name} {c.name}: {c.summary}" for c in self.checks), *self.healed]

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status.name,
            "exit_code": int(self.status),
            "checks": [
                {
                    "name": c.name,
                    "status": c.status.name,
                    "summary": c.summary,
                    "metrics": {_metric_key(m): m.value for m in c.metrics},
                }
                for c in self.checks
            ],
            "streams": [
                {
                    "stream": s.name,
                    "status": s.status.name,
                    "every_minutes": s.every_minutes,
                    "last_success": s.last_success.isoformat() if s.last_success else None,
                    "age_seconds": round(s.age_seconds) if s.age_seconds is not None else None,
                    "last_status": s.last_status,
                }
                for s in self.streams
            ],
            "healed": self.healed,
        }

    def write_prometheus(self, path: Path, now: datetime) -> None:
        """node_exporter's textfile format, written to a temporary file beside ``path`` and renamed over it, so
        the collector never reads half a file."""
        from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

        registry = CollectorRegistry()
        Gauge("stsync_health_status", "Overall: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", registry=registry).set(
            int(self.status)
        )
        Gauge("stsync_health_timestamp_seconds", "When the checks ran", registry=registry).set(now.timestamp())
        checks = Gauge("stsync_health_check_status", "Per check: 0 OK .. 3 UNKNOWN", ["check"], registry=registry)
        for c in self.checks:
            checks.labels(check=c.name).set(int(c.status))
        stream_status = Gauge("stsync_stream_status", "Per stream: 0 OK .. 3 UNKNOWN", ["stream"], registry=registry)
        age = Gauge(
            "stsync_stream_last_success_age_seconds",
            "Seconds since the stream's last successful sync (NaN: never)",
            ["stream"],
            registry=registry,
        )
        for s in self.streams:
            stream_status.labels(stream=s.name).set(int(s.status))
            age.labels(stream=s.name).set(s.age_seconds if s.age_seconds is not None else math.nan)
        gauges: dict[str, Any] = {}
        for c in self.checks:
            for m in c.metrics:
                name = f"stsync_{m.name}" + ("_seconds" if m.unit == "s" else "")
                if name not in gauges:
                    gauges[name] = Gauge(name, f"{c.name}: {m.name}", [k for k, _ in m.labels], registry=registry)
                gauge = gauges[name]
                (gauge.labels(**dict(m.labels)) if m.labels else gauge).set(m.value)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)


def _metric_key(m: Metric) -> str:
    return m.name + "".join(f"[{v}]" for _, v in m.labels)


def _perfdata(m: Metric) -> str:
    label = m.name + "".join(f"_{v}" for _, v in m.labels)
    value = f"{m.value:g}" if not math.isnan(m.value) else "U"
    warn = f"{m.warning:g}" if m.warning is not None else ""
    crit = f"{m.critical:g}" if m.critical is not None else ""
    return f"'{label}'={value}{m.unit};{warn};{crit};0;"


def _level(value: float, warning: float, critical: float) -> Status:
    if value >= critical:
        return Status.CRITICAL
    if value >= warning:
        return Status.WARNING
    return Status.OK


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


# --- the checks ---------------------------------------------------------------------------------------


class _Ctx:
    """What every check reads: the connection (autocommit), the settings, and the time the run judges by."""

    def __init__(self, conn: psycopg.Connection[Any], settings: HealthSettings, now: datetime) -> None:
        self.conn, self.settings, self.now = conn, settings, now
        self.streams: list[StreamHealth] = []
        self.sync_lock_held = False

    def rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(Q[name], {"now": self.now, **(params or {})})
                return list(cur.fetchall())
        except psycopg.Error as exc:
            raise error_for(exc, f"checking {name.removeprefix('health_')}") from None

    def one(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        rows = self.rows(name, params)
        return rows[0] if rows else {}


def _database(ctx: _Ctx) -> Check:
    try:
        pending, applied = pending_on(ctx.conn)
    except StsyncError as exc:
        return Check("database", Status.CRITICAL, str(exc))
    version = ctx.conn.info.parameter_status("server_version") or "?"
    metrics = [Metric("migrations_pending", len(pending), critical=1)]
    if pending:
        names = ", ".join(pending[:3]) + (", …" if len(pending) > 3 else "")
        return Check(
            "database", Status.CRITICAL, f"{len(pending)} migrations pending ({names}): run `stsync migrate`", metrics
        )
    return Check("database", Status.OK, f"PostgreSQL {version}, {applied} migrations applied", metrics)


def _streams(ctx: _Ctx) -> Check:
    every = dict(ctx.settings.streams)
    rows = ctx.rows("health_streams", {"streams": list(every)})
    metrics: list[Metric] = []
    stale: list[tuple[Status, str]] = []
    for r in rows:
        name, minutes = r["stream"], every[r["stream"]]
        success: datetime | None = r["last_success"]
        age = (ctx.now - success).total_seconds() if success is not None else None
        if age is None:
            status = Status.CRITICAL
            stale.append((status, f"{name} never synced"))
        else:
            status = _level(age, 2 * minutes * 60, 6 * minutes * 60)
            if status != Status.OK:
                stale.append((status, f"{name} {_ago(age)} ago (expected every {minutes:g}m)"))
        ctx.streams.append(StreamHealth(name, minutes, status, success, age, r["last_status"], r["last_error"]))
    ages = [s.age_seconds for s in ctx.streams if s.age_seconds is not None]
    metrics.append(Metric("streams_stale", sum(1 for s in ctx.streams if s.status != Status.OK)))
    metrics.append(Metric("stream_oldest_success_age", max(ages, default=math.nan), "s"))
    if not stale:
        oldest = f", oldest success {_ago(max(ages))} ago" if ages else ""
        return Check("streams", Status.OK, f"{len(rows)} streams fresh{oldest}", metrics)
    worst = max(s for s, _ in stale)
    return Check("streams", worst, f"{len(stale)} stale: " + ", ".join(t for _, t in stale), metrics)


def _last_runs(ctx: _Ctx) -> Check:
    if ctx.streams:
        runs = [(s.name, s.last_status, s.last_error) for s in ctx.streams]
    else:  # the streams check failed before it read them
        rows = ctx.rows("health_streams", {"streams": [n for n, _ in ctx.settings.streams]})
        runs = [(r["stream"], r["last_status"], r["last_error"]) for r in rows]
    failed = [(n, e) for n, st, e in runs if st == "failed"]
    partial = [n for n, st, _ in runs if st == "partial"]
    metrics = [Metric("streams_failed", len(failed), critical=1), Metric("streams_partial", len(partial), warning=1)]
    if failed:
        first, error = failed[0]
        more = f" (and {', '.join(n for n, _ in failed[1:])})" if len(failed) > 1 else ""
        return Check("last runs", Status.CRITICAL, f"{first} failed: {error or 'no error recorded'}{more}", metrics)
    if partial:
        return Check("last runs", Status.WARNING, f"partial (records quarantined): {', '.join(partial)}", metrics)
    return Check("last runs", Status.OK, "every stream's last run completed", metrics)


def _quarantine(ctx: _Ctx) -> Check:
    r = ctx.one("health_quarantine")
    lim = ctx.settings.limits
    open_, new = int(r.get("open") or 0), int(r.get("new_24h") or 0)
    status = max(
        _level(open_, lim.quarantine_warning, lim.quarantine_critical),
        Status.CRITICAL if new >= lim.quarantine_growth_critical else Status.OK,
    )
    metrics = [
        Metric("quarantine_open", open_, warning=lim.quarantine_warning, critical=lim.quarantine_critical),
        Metric("quarantine_new_24h", new, critical=lim.quarantine_growth_critical),
    ]
    hint = " (`stsync sync` resolves a record that arrives valid)" if open_ else ""
    return Check("quarantine", status, f"{open_} open, {new} new in 24h{hint}", metrics)


def _ghl(ctx: _Ctx) -> list[Check]:
    location = ctx.settings.location_id
    lim = ctx.settings.limits
    if location is None:
        return [Check("ghl", Status.OK, "not configured (ghl.location_id is not set)")]
    r = ctx.one("health_ghl", {"location_id": location})
    dead = {k: int(r.get(f"dead_{k}") or 0) for k in ("contacts", "opportunities", "webhook_posts")}
    total = sum(dead.values())
    checks = [
        Check(
            "ghl dead letters",
            _level(total, lim.ghl_dead_warning, lim.ghl_dead_critical),
            ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in dead.items())
            + (" (`stsync ghl status` lists them, `stsync ghl retry --dead` retries)" if total else ""),
            [
                Metric(
                    "ghl_dead_letters",
                    n,
                    warning=lim.ghl_dead_warning,
                    critical=lim.ghl_dead_critical,
                    labels=(("kind", k),),
                )
                for k, n in dead.items()
            ],
        )
    ]
    if r.get("changes_through") is None:
        checks.append(Check("ghl pending", Status.WARNING, f"no complete push yet for location {location}"))
    else:
        oldest = min((t for t in (r.get("oldest_unpushed"), r.get("oldest_retry_due")) if t is not None), default=None)
        age = max(0.0, (ctx.now - oldest).total_seconds()) if oldest is not None else 0.0
        warn, crit = lim.ghl_pending_warning_minutes * 60, lim.ghl_pending_critical_minutes * 60
        summary = f"oldest change waiting for the push: {_ago(age)}" if oldest is not None else "nothing waiting"
        checks.append(
            Check(
                "ghl pending",
                _level(age, warn, crit),
                summary,
                [Metric("ghl_oldest_pending_age", age, "s", warn, crit)],
            )
        )
    dead_urls = ctx.rows("health_dead_webhooks")
    checks.append(
        Check(
            "ghl webhook urls",
            Status.CRITICAL if dead_urls else Status.OK,
            (
                "dead: "
                + ", ".join(f"business unit {u['id']} ({u['name']}), HTTP {u['http_status'] or '-'}" for u in dead_urls)
                + " (set a new URL with `stsync bu set`)"
            )
            if dead_urls
            else "every webhook-mode business unit's newest post went through",
            [Metric("ghl_dead_webhook_urls", len(dead_urls), critical=1)],
        )
    )
    return checks


def _events(ctx: _Ctx) -> list[Check]:
    lim = ctx.settings.limits
    late_at = ctx.now - timedelta(minutes=lim.steps_late_warning_minutes)
    r = ctx.one("health_events", {"late": late_at})
    oldest: datetime | None = r.get("oldest_pending")
    age = max(0.0, (ctx.now - oldest).total_seconds()) if oldest is not None else 0.0
    warn, crit = lim.events_pending_warning_minutes * 60, lim.events_pending_critical_minutes * 60
    pending = int(r.get("pending") or 0)
    events = Check(
        "events",
        _level(age, warn, crit),
        f"{pending} pending, the oldest {_ago(age)} old (`stsync events poll` matches them)"
        if pending
        else "none pending",
        [Metric("events_pending", pending), Metric("events_oldest_pending_age", age, "s", warn, crit)],
    )
    due: datetime | None = r.get("oldest_due")
    late_age = max(0.0, (ctx.now - due).total_seconds()) if due is not None else 0.0
    swarn, scrit = lim.steps_late_warning_minutes * 60, lim.steps_late_critical_minutes * 60
    expired, dead, late = int(r.get("expired_leases") or 0), int(r.get("dead") or 0), int(r.get("late") or 0)
    status = max(
        _level(late_age, swarn, scrit),
        Status.WARNING if expired else Status.OK,
        _level(dead, lim.events_dead_warning, lim.events_dead_critical),
    )
    parts = [f"{late} late (the oldest due {_ago(late_age)} ago)" if late else "none late"]
    parts.append(f"{expired} expired leases" + (" (`stsync health --heal` releases them)" if expired else ""))
    parts.append(f"{dead} dead" + (" (`stsync workflows retry`)" if dead else ""))
    steps = Check(
        "workflow steps",
        status,
        ", ".join(parts),
        [
            Metric("steps_late", late),
            Metric("steps_oldest_due_age", late_age, "s", swarn, scrit),
            Metric("steps_expired_leases", expired, warning=1),
            Metric("steps_dead", dead, warning=lim.events_dead_warning, critical=lim.events_dead_critical),
        ],
    )
    return [events, steps]


def _locks(ctx: _Ctx) -> list[Check]:
    tenant = ctx.settings.tenant_id
    rows = ctx.rows("health_locks", {"sync_lock": run_lock_name(tenant) if tenant is not None else ""})
    limit = ctx.settings.limits.lock_max_minutes * 60
    held, stuck = [], []
    for r in rows:
        if r["what"] == "sync":
            ctx.sync_lock_held = True
        since: datetime | None = r["since"]
        age = (ctx.now - since).total_seconds() if since is not None else None
        text = f"{r['what']} (pid {r['pid']}, " + (f"{_ago(age)})" if age is not None else "start not visible)")
        held.append(text)
        if age is not None and age > limit:
            stuck.append(text)
    locks = Check(
        "locks",
        Status.CRITICAL if stuck else Status.OK,
        f"held too long (over {_ago(limit)}): {', '.join(stuck)}"
        if stuck
        else (f"held: {', '.join(held)}" if held else "none held"),
        [Metric("locks_held_too_long", len(stuck), critical=1)],
    )
    r = ctx.one("health_dead_runs")
    n = int(r.get("n") or 0)
    died = 0 if ctx.sync_lock_held else n  # while a run holds the lock, its own rows are 'started'
    runs = Check(
        "dead runs",
        Status.WARNING if died else Status.OK,
        f"{died} stream runs died without recording completion, the oldest started {r['oldest']:%Y-%m-%d %H:%M}Z "
        "(the next sync marks them failed)"
        if died
        else ("a sync is running" if ctx.sync_lock_held and n else "none"),
        [Metric("runs_died", died, warning=1)],
    )
    return [locks, runs]


_CHECKS: tuple[tuple[str, Callable[[_Ctx], Check | list[Check]]], ...] = (
    ("database", _database),
    ("streams", _streams),
    ("last runs", _last_runs),
    ("quarantine", _quarantine),
    ("ghl", _ghl),
    ("events", _events),
    ("locks", _locks),
)


def check(settings: HealthSettings, now: datetime) -> Report:
    """Every database check, judged as of ``now``."""
    try:
        conn = connect_sync(settings.dsn, settings.connect_timeout)
    except StsyncError as exc:
        reason = f"cannot be reached: {exc}"
        return Report(
            [Check("database", Status.UNKNOWN, reason)]
            + [Check(name, Status.UNKNOWN, "not checked: the database cannot be reached") for name, _ in _CHECKS[1:]]
        )
    checks: list[Check] = []
    with conn:
        ctx = _Ctx(conn, settings, now)
        for name, run in _CHECKS:
            try:
                found = run(ctx)
            except Exception as exc:  # a check that cannot run is a failure to report, never a skip
                text = str(exc) if isinstance(exc, StsyncError) else f"{type(exc).__name__}: {exc}"
                found = Check(name, Status.CRITICAL, f"the check failed to run: {text}")
            checks += found if isinstance(found, list) else [found]
    return Report(checks, ctx.streams)
