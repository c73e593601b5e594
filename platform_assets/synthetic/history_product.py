"""Deterministic product and app history on past days, with the answers the marts must give.

``load_product_history`` writes, for a seed, users, orders, subscriptions and server-side
events into the app's Postgres (explicit historical timestamps, through psycopg: the CDC
replica carries them to ClickHouse) and client-side product events straight into ClickHouse
``raw.product_events`` (as the collector's Kafka path would have landed them, duplicates
included). The returned :class:`ProductHistory` computes in plain Python, independently of
the SQL, what ``fct_sessions``, ``mart_active_users_daily``, ``mart_signup_funnel_daily``,
``mart_retention_weekly``, ``mart_orders_daily``, ``mart_mrr_daily`` and the product-analytics
marts (``mart_feature_adoption_weekly``, ``mart_session_length_daily``,
``mart_retention_l7_daily``, ``mart_paths_daily``, ``mart_breakdown_daily``) must contain.

Client events carry a device type in their ``context`` (key ``device_type``, sometimes empty or
absent); users a country (sometimes empty). A few client events are late: with
``hold_late=True`` they are left out of the load and written later by ``load_late_events``, as
events that reach raw after a first build of their day. Some signups are forced into a cohort
week that crosses a month end.

Rows are recognisable and replaced on a rerun: app rows by their id range (user ids from
``BASE_ID``), client events by their ``session_id`` prefix (``SESSION_PREFIX``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from platform_assets.core.identity import user_hash
from platform_assets.core.resources import ClickHouseResource, PostgresResource
from platform_assets.synthetic.raw_columns import PRODUCT_EVENT_COLUMNS

BASE_ID = 5_000_000  # users, orders and subscriptions of this history: no other code uses this range
N_USERS = 200
BOT_ID = BASE_ID + 99_999  # a client actor with no users row (an API poller)
ID_SPAN = 100_000  # ids [BASE_ID, BASE_ID + ID_SPAN) belong to this module
SESSION_PREFIX = "histprod-"  # client session ids of this history (raw rows are deleted by it)
WORKSPACES = ("ws_1", "ws_2", "ws_3")
APP_WORKSPACE = "app"  # dbt var app_workspace_id: server-side events count in this workspace
PAGES = ("/home", "/docs", "/pricing", "/settings", "/reports")
FEATURES = ("export", "dashboards", "alerts", "sharing")
PLANS = {"pro": 2_900, "team": 9_900, "enterprise": 49_900}  # mrr_cents
SESSION_GAP_S = 30 * 60  # a gap strictly above this starts a new session
FUNNEL_STEPS = ("signup_page_view", "signup_submitted", "signup_completed")
FUNNEL_WINDOW = timedelta(days=7)
COUNTRIES = ("DE", "US", "FR", "BR")
# context.device_type per client session: "" is sent empty, None leaves the key out (both 'unknown')
DEVICE_TYPES: tuple[str | None, ...] = ("desktop", "desktop", "mobile", "mobile", "tablet", "", None)
UNKNOWN = "unknown"  # mart_breakdown_daily's country and device type when there is none
LATE_DAY_OFFSETS = (12, 21)  # history days (from the start) some of whose client events arrive late
LATE_SHARE = 0.25  # of those days' client events with a user
CROSSING_USERS = 10  # signups forced into the cohort week that crosses a month end
# mart_session_length_daily: lower bounds (seconds, inclusive) and labels of the buckets 1..8
LENGTH_BOUNDS = (0, 10, 30, 60, 180, 600, 1800, 3600)
LENGTH_LABELS = ("0-10s", "10-30s", "30-60s", "1-3m", "3-10m", "10-30m", "30-60m", "60m+")
L7_DAYS = 7


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy.percentile's default and
    ClickHouse's quantileExactInclusive)."""
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    if lo + 1 >= len(xs):
        return xs[lo]
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


def monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """A product event as the marts see it (one per event_id, either source)."""

    event_id: str
    workspace_id: str
    user_hash: str  # '' when anonymous
    event_type: str
    occurred_at: datetime
    path: str = ""
    feature: str = ""
    session_id: str = ""  # the client's session id; '' for server-side events
    device_type: str = ""  # context.device_type as sent; '' when empty, absent or server side

    @property
    def step(self) -> str:
        """mart_paths_daily's step: the page path, feature_used:<feature> or the event type."""
        if self.event_type == "page_view":
            return self.path or "page_view"
        if self.event_type == "feature_used":
            return f"feature_used:{self.feature}" if self.feature else "feature_used"
        return self.event_type


@dataclass(frozen=True)
class Session:
    workspace_id: str
    user_hash: str
    start: datetime
    end: datetime
    events: int

    @property
    def day(self) -> date:
        return self.start.date()


@dataclass(frozen=True)
class Order:
    order_id: int
    user_id: int
    amount_cents: int
    created_at: datetime
    refunded_at: datetime | None


@dataclass(frozen=True)
class Subscription:
    subscription_id: int
    user_id: int
    plan: str  # current plan (after any change)
    mrr_cents: int
    started_at: datetime
    cancelled_at: datetime | None


@dataclass
class ProductHistory:
    start: date
    days: int
    seed: int
    user_ids: list[int] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict)
    signed_up_at: dict[int, datetime] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)  # deduplicated, client and server side
    raw_rows: int = 0  # rows inserted into raw.product_events (duplicates included)
    duplicate_rows: int = 0
    anonymous_events: int = 0
    server_events: int = 0
    orders: list[Order] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    countries: dict[int, str] = field(default_factory=dict)  # users.country ('' for some)
    late_event_ids: set[str] = field(default_factory=set)  # client events that arrive late
    crossing_week: date | None = None  # Monday of the cohort week across a month end
    late_rows: list[list[Any]] = field(default_factory=list, compare=False, repr=False)

    def on_time(self) -> ProductHistory:
        """The record without the late events: what a build before they arrive must give."""
        return dataclasses.replace(self, events=[e for e in self.events if e.event_id not in self.late_event_ids])

    # -- the calendar ---------------------------------------------------------------------
    @property
    def end(self) -> date:
        """Last day (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def in_window(self, d: date) -> bool:
        return self.start <= d <= self.end

    # -- expected marts -------------------------------------------------------------------
    def sessions(self) -> list[Session]:
        """fct_sessions: runs of a user's events in one workspace with no gap above 30
        minutes, cut at the end of the day after the day they began; kept by start day."""
        by_actor: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for e in self.events:
            if e.user_hash:
                by_actor[(e.workspace_id, e.user_hash)].append(e.occurred_at)
        out: list[Session] = []
        for (ws, uh), times in by_actor.items():
            times.sort()
            chains: list[list[datetime]] = []
            for t in times:
                if not chains or (t - chains[-1][-1]).total_seconds() > SESSION_GAP_S:
                    chains.append([t])
                else:
                    chains[-1].append(t)
            for chain in chains:
                cut = midnight(chain[0].date() + timedelta(days=2))
                kept = [t for t in chain if t < cut]
                if self.in_window(chain[0].date()):
                    out.append(Session(ws, uh, chain[0], kept[-1], len(kept)))
        return out

    def sessions_per_day(self) -> dict[date, int]:
        counts: dict[date, int] = defaultdict(int)
        for s in self.sessions():
            counts[s.day] += 1
        return dict(counts)

    def active_users(self) -> dict[tuple[date, str], tuple[int, int, int, float]]:
        """mart_active_users_daily: (day, workspace | '__all__') -> (dau, wau, mau, stickiness),
        for every history day and workspace with a user active in the trailing 30 days."""
        active: dict[tuple[date, str], set[str]] = defaultdict(set)
        for e in self.events:
            if e.user_hash:
                d = e.occurred_at.date()
                active[(d, e.workspace_id)].add(e.user_hash)
                active[(d, "__all__")].add(e.user_hash)
        workspaces = {ws for _, ws in active}
        out: dict[tuple[date, str], tuple[int, int, int, float]] = {}
        for day in self.day_list():
            for ws in workspaces:

                def users(n: int, day: date = day, ws: str = ws) -> set[str]:
                    acc: set[str] = set()
                    for k in range(n):
                        acc |= active.get((day - timedelta(days=k), ws), set())
                    return acc

                dau, wau, mau = len(users(1)), len(users(7)), len(users(30))
                if mau:
                    out[(day, ws)] = (dau, wau, mau, dau / mau)
        return out

    def funnel(self) -> dict[tuple[date, int], tuple[str, int, float | None, float, float | None]]:
        """mart_signup_funnel_daily: (day, step) -> (step name, users, conversion from the
        previous step, conversion from step 1, median seconds from the previous step)."""
        step1: dict[tuple[str, date], datetime] = {}
        submitted: dict[str, list[datetime]] = defaultdict(list)
        completed: dict[str, list[datetime]] = defaultdict(list)
        for e in self.events:
            if not e.user_hash:
                continue
            if e.event_type == "page_view" and e.path == "/signup":
                key = (e.user_hash, e.occurred_at.date())
                step1[key] = min(step1.get(key, e.occurred_at), e.occurred_at)
            elif e.event_type == "signup_submitted":
                submitted[e.user_hash].append(e.occurred_at)
            elif e.event_type == "signup_completed":
                completed[e.user_hash].append(e.occurred_at)
        per_day: dict[date, list[list[float]]] = defaultdict(lambda: [[], [], []])
        for (uh, day), t1 in step1.items():
            if not self.in_window(day):
                continue
            per_day[day][0].append(0.0)
            limit = t1 + FUNNEL_WINDOW
            t2 = min((t for t in submitted[uh] if t1 <= t <= limit), default=None)
            if t2 is None:
                continue
            per_day[day][1].append((t2 - t1).total_seconds())
            t3 = min((t for t in completed[uh] if t2 <= t <= limit), default=None)
            if t3 is not None:
                per_day[day][2].append((t3 - t2).total_seconds())
        out: dict[tuple[date, int], tuple[str, int, float | None, float, float | None]] = {}
        for day, steps in per_day.items():
            first = len(steps[0])
            for i, secs in enumerate(steps):
                prev = len(steps[i - 1]) if i else first
                median = percentile(secs, 0.5) if i and secs else None
                conv_prev = len(secs) / prev if prev else None
                out[(day, i + 1)] = (FUNNEL_STEPS[i], len(secs), conv_prev, len(secs) / first, median)
        return out

    def retention(self) -> dict[tuple[date, int], tuple[int, int, float]]:
        """mart_retention_weekly: (cohort week, week offset) -> (cohort users, retained users,
        rate), for cohort weeks of this history's users and weeks up to the last history week."""
        weeks_active: dict[str, set[date]] = defaultdict(set)
        for e in self.events:
            if e.user_hash:
                weeks_active[e.user_hash].add(monday(e.occurred_at.date()))
        cohorts: dict[date, list[int]] = defaultdict(list)
        for uid, t in self.signed_up_at.items():
            cohorts[monday(t.date())].append(uid)
        last_week = monday(self.end)
        out: dict[tuple[date, int], tuple[int, int, float]] = {}
        for week, uids in cohorts.items():
            for offset in range((last_week - week).days // 7 + 1):
                ws = week + timedelta(days=7 * offset)
                retained = sum(1 for u in uids if ws in weeks_active[self.hashes[u]])
                out[(week, offset)] = (len(uids), retained, retained / len(uids))
        return out

    def orders_daily(self) -> dict[date, tuple[int, float, float, float]]:
        """mart_orders_daily: day -> (orders, revenue_usd, refunds_usd, net_revenue_usd), every
        history day from the first order's day."""
        first = min(o.created_at.date() for o in self.orders)
        count: dict[date, int] = defaultdict(int)
        gross: dict[date, int] = defaultdict(int)
        refunds: dict[date, int] = defaultdict(int)
        for o in self.orders:
            count[o.created_at.date()] += 1
            gross[o.created_at.date()] += o.amount_cents
            if o.refunded_at is not None:
                refunds[o.refunded_at.date()] += o.amount_cents
        return {
            d: (count[d], gross[d] / 100, refunds[d] / 100, gross[d] / 100 - refunds[d] / 100)
            for d in self.day_list()
            if d >= first
        }

    def mrr_daily(self) -> dict[date, tuple[float, int, int, int]]:
        """mart_mrr_daily: day -> (mrr_usd, active, new, churned) at the end of each history day
        from the first subscription's day; MRR from each subscription's current plan."""
        first = min(s.started_at.date() for s in self.subscriptions)
        out: dict[date, tuple[float, int, int, int]] = {}
        for d in self.day_list():
            if d < first:
                continue
            live = [
                s
                for s in self.subscriptions
                if s.started_at.date() <= d and (s.cancelled_at is None or s.cancelled_at.date() > d)
            ]
            new = sum(1 for s in self.subscriptions if s.started_at.date() == d)
            churned = sum(1 for s in self.subscriptions if s.cancelled_at is not None and s.cancelled_at.date() == d)
            out[d] = (sum(s.mrr_cents for s in live) / 100, len(live), new, churned)
        return out

    # -- product-analytics marts ----------------------------------------------------------
    def _uid_by_hash(self) -> dict[str, int]:
        return {self.hashes[uid]: uid for uid in self.signed_up_at}

    def feature_adoption(self) -> dict[tuple[date, str, str], tuple[int, int, float]]:
        """mart_feature_adoption_weekly: (cohort week, workspace | '__all__', feature) ->
        (cohort users, adopters, adoption rate). A cohort user counts in a workspace with any
        event of theirs there; adopted = a feature_used of the feature at or after signup.
        Features: those adopted by at least one user of the cohort."""
        uid_of = self._uid_by_hash()
        cohort_of = {uid: monday(t.date()) for uid, t in self.signed_up_at.items()}
        members: dict[tuple[date, str], set[int]] = defaultdict(set)
        adopters: dict[tuple[date, str, str], set[int]] = defaultdict(set)
        for uid, week in cohort_of.items():
            members[(week, "__all__")].add(uid)
        for e in self.events:
            user = uid_of.get(e.user_hash) if e.user_hash else None
            if user is None:
                continue
            week = cohort_of[user]
            members[(week, e.workspace_id)].add(user)
            if e.event_type == "feature_used" and e.feature and e.occurred_at >= self.signed_up_at[user]:
                adopters[(week, e.workspace_id, e.feature)].add(user)
                adopters[(week, "__all__", e.feature)].add(user)
        features: dict[date, set[str]] = defaultdict(set)
        for week, _, feature in adopters:
            features[week].add(feature)
        out: dict[tuple[date, str, str], tuple[int, int, float]] = {}
        for (week, ws), uids in members.items():
            for feature in features[week]:
                n = len(adopters.get((week, ws, feature), set()))
                out[(week, ws, feature)] = (len(uids), n, n / len(uids))
        return out

    def session_length(self) -> dict[tuple[date, str, int], tuple[str, int, int | None, int, float]]:
        """mart_session_length_daily: (day, workspace, bucket) -> (label, lower bound, upper
        bound or None, sessions, share), all eight buckets of each day and workspace with a session."""
        counts: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0] * len(LENGTH_BOUNDS))
        for s in self.sessions():
            duration = (s.end - s.start).total_seconds()
            bucket = sum(1 for b in LENGTH_BOUNDS if b <= duration)
            counts[(s.day, s.workspace_id)][bucket - 1] += 1
        out: dict[tuple[date, str, int], tuple[str, int, int | None, int, float]] = {}
        for (day, ws), per_bucket in counts.items():
            total = sum(per_bucket)
            for i, n in enumerate(per_bucket):
                upper = LENGTH_BOUNDS[i + 1] if i + 1 < len(LENGTH_BOUNDS) else None
                out[(day, ws, i + 1)] = (LENGTH_LABELS[i], LENGTH_BOUNDS[i], upper, n, n / total)
        return out

    def retention_l7(self, today: date) -> dict[date, tuple[int, int, float, bool]]:
        """mart_retention_l7_daily: signup day -> (cohort users, retained, rate, complete).
        Retained: any event (either source, any workspace) on days 1..7 after the signup day."""
        days_active: dict[str, set[date]] = defaultdict(set)
        for e in self.events:
            if e.user_hash:
                days_active[e.user_hash].add(e.occurred_at.date())
        cohorts: dict[date, list[int]] = defaultdict(list)
        for uid, t in self.signed_up_at.items():
            cohorts[t.date()].append(uid)
        out: dict[date, tuple[int, int, float, bool]] = {}
        for day, uids in cohorts.items():
            window = {day + timedelta(days=k) for k in range(1, L7_DAYS + 1)}
            retained = sum(1 for u in uids if days_active[self.hashes[u]] & window)
            out[day] = (len(uids), retained, retained / len(uids), day + timedelta(days=L7_DAYS) < today)
        return out

    def paths(self) -> dict[tuple[date, str, str, str], tuple[int, int]]:
        """mart_paths_daily: (day of the step, workspace, step, next step) -> (transitions,
        users): a user's next event in the workspace at most 30 minutes later."""
        by_actor: dict[tuple[str, str], list[Event]] = defaultdict(list)
        for e in self.events:
            if e.user_hash:
                by_actor[(e.workspace_id, e.user_hash)].append(e)
        counts: dict[tuple[date, str, str, str], int] = defaultdict(int)
        users: dict[tuple[date, str, str, str], set[str]] = defaultdict(set)
        for (ws, uh), evs in by_actor.items():
            evs.sort(key=lambda e: (e.occurred_at, e.event_id))
            for a, b in itertools.pairwise(evs):
                if (b.occurred_at - a.occurred_at).total_seconds() > SESSION_GAP_S:
                    continue
                if not self.in_window(a.occurred_at.date()):
                    continue
                key = (a.occurred_at.date(), ws, a.step, b.step)
                counts[key] += 1
                users[key].add(uh)
        return {key: (n, len(users[key])) for key, n in counts.items()}

    def breakdown(self) -> dict[tuple[date, str, str, str], tuple[int, int, int]]:
        """mart_breakdown_daily: (day, workspace, country, device type) -> (events, active
        users, client sessions); 'unknown' for no user, no users row, an empty value."""
        uid_of = self._uid_by_hash()
        events: dict[tuple[date, str, str, str], int] = defaultdict(int)
        users: dict[tuple[date, str, str, str], set[str]] = defaultdict(set)
        sessions: dict[tuple[date, str, str, str], set[str]] = defaultdict(set)
        for e in self.events:
            uid = uid_of.get(e.user_hash) if e.user_hash else None
            country = (self.countries.get(uid, "") if uid is not None else "") or UNKNOWN
            key = (e.occurred_at.date(), e.workspace_id, country, e.device_type or UNKNOWN)
            events[key] += 1
            if e.user_hash:
                users[key].add(e.user_hash)
            if e.session_id:
                sessions[key].add(e.session_id)
        return {key: (n, len(users[key]), len(sessions[key])) for key, n in events.items()}


class _Builder:
    """Draws the history from one seeded RNG; nothing here reads the clock."""

    def __init__(self, start: date, days: int, seed: int, key: str) -> None:
        self.rng = random.Random(f"history_product:{seed}")
        # Device types, late arrivals, countries and forced signup days draw from their own
        # generator, so the main draws (times, funnels, money) stay as they were.
        self.side = random.Random(f"history_product:side:{seed}")
        self.late_days = {start + timedelta(days=k) for k in LATE_DAY_OFFSETS if k < days}
        self.devices: dict[str, str | None] = {}
        self.t0 = midnight(start)
        self.t_end = self.t0 + timedelta(days=days)
        self.days = days
        self.key = key
        self.hist = ProductHistory(start=start, days=days, seed=seed)
        self.raw: list[list[Any]] = []  # raw.product_events rows
        self.pg_events: list[tuple[uuid.UUID, int | None, datetime, str, dict[str, Any]]] = []
        self.sessions = 0

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def client(self, ws: str, uid: int | None, event_type: str, t: datetime, props: dict[str, Any]) -> None:
        if t >= self.t_end:
            return
        event_id = self.uuid()
        actor = self.hist.hashes[uid] if uid is not None else ""
        session_id = f"{SESSION_PREFIX}{self.hist.seed}-{self.sessions}"
        if session_id not in self.devices:
            self.devices[session_id] = self.side.choice(DEVICE_TYPES)
        device = self.devices[session_id]
        context: dict[str, Any] = {"generator": "history_product"}
        if device is not None:
            context["device_type"] = device
        late = bool(actor) and t.date() in self.late_days and self.side.random() < LATE_SHARE
        rows = self.hist.late_rows if late else self.raw
        row = [
            event_id,
            event_type,
            t,
            ws,
            session_id,
            actor,
            "web",
            json.dumps(context),
            json.dumps(props),
            0,
            len(self.raw) + len(self.hist.late_rows),
            t + (timedelta(days=2) if late else timedelta(seconds=2)),
        ]
        rows.append(row)
        if self.rng.random() < 0.01:  # Kafka redelivery: the same message twice
            rows.append(list(row))
            self.hist.duplicate_rows += 1
        if late:
            self.hist.late_event_ids.add(str(event_id))
        self.hist.events.append(
            Event(
                str(event_id), ws, actor, event_type, t, props.get("path", ""), props.get("feature", ""),
                session_id, device or "",
            )
        )  # fmt: skip
        if not actor:
            self.hist.anonymous_events += 1

    def server(self, uid: int, name: str, t: datetime, props: dict[str, Any]) -> None:
        if t >= self.t_end:
            return
        event_id = self.uuid()
        self.pg_events.append((event_id, uid, t, name, props))
        self.hist.events.append(
            Event(str(event_id), APP_WORKSPACE, self.hist.hashes[uid], name, t, props.get("path", ""))
        )
        self.hist.server_events += 1

    def secs(self, lo: int, hi: int) -> timedelta:
        return timedelta(seconds=self.rng.randrange(lo, hi))

    def build(self) -> ProductHistory:
        rng, hist = self.rng, self.hist
        # Signups (step 1 plus up to 8 days to complete) end at least 8 days before the last
        # history day, i.e. 10 days before "today": no cohort reaches the current week, where
        # other code on a shared stack writes users stamped "now".
        signup_span = max(1, self.days - 17)
        crossing = self.crossing_days(signup_span)
        activity: list[tuple[int, str, float, datetime]] = []
        for i in range(N_USERS):
            uid = BASE_ID + i
            hist.user_ids.append(uid)
            hist.hashes[uid] = user_hash(self.key, str(uid))
            hist.countries[uid] = "" if i % 50 == 7 else COUNTRIES[uid % len(COUNTRIES)]
            home = WORKSPACES[i % len(WORKSPACES)]
            self.sessions += 1
            day = rng.randrange(signup_span)
            if crossing and i % (N_USERS // CROSSING_USERS) == 1:
                day = self.side.choice(crossing)
            t1 = self.t0 + timedelta(days=day) + self.secs(6 * 3600, 22 * 3600)
            self.client(home, uid, "page_view", t1, {"path": "/signup"})
            if rng.random() < 0.2:  # a second visit the same day: the first one counts
                self.client(home, uid, "page_view", t1 + self.secs(60, 1500), {"path": "/signup"})
            signup = t1 + self.secs(60, 900)
            r = rng.random()
            t2: datetime | None = None
            if r < 0.75:
                t2 = t1 + self.secs(20, 3 * 3600)
            elif r < 0.85:
                t2 = t1 + timedelta(days=8) + self.secs(0, 3600)  # too late for this funnel
                self.sessions += 1
                self.client(home, uid, "page_view", t2 - self.secs(30, 300), {"path": "/signup"})
            if t2 is not None:
                self.client(home, uid, "signup_submitted", t2, {})
                signup = t2 + self.secs(5, 40)
                if rng.random() < 0.85:
                    signup = t2 + self.secs(3, 900)
                    self.server(uid, "signup_completed", signup, {"path": "/signup"})
            if rng.random() < 0.1:  # back to the signup page another day
                self.sessions += 1
                self.client(home, uid, "page_view", t1 + timedelta(days=rng.randint(1, 3)), {"path": "/signup"})
            hist.signed_up_at[uid] = signup
            activity.append((uid, home, rng.uniform(0.15, 0.6), signup))
            if rng.random() < 0.15:
                other = rng.choice([w for w in WORKSPACES if w != home])
                activity.append((uid, other, rng.uniform(0.1, 0.3), signup))
        for uid, ws, p, since in activity:
            self.activity(uid, ws, p, since)
        for _ in range(self.days * 15):  # anonymous visitors
            self.sessions += 1
            t = self.t0 + self.secs(0, self.days * 86400)
            self.client(rng.choice(WORKSPACES), None, "page_view", t, {"path": rng.choice(PAGES)})
        self.bot()
        self.money()
        return hist

    def crossing_days(self, signup_span: int) -> list[int]:
        """Day offsets of the first cohort week (Monday) that spans two months, where a
        signup can fall: within the usual signup span, else up to 10 days before the end
        (a signup completes at most 9 days after its first page view) and before the week
        of "today" (two days after the last history day). [] when there is none: a window
        of 35 days always holds a month end, but when that is a Sunday no week crosses it."""
        start = self.t0.date()
        this_week = monday(start + timedelta(days=self.days + 1))
        for limit in (signup_span, min(self.days - 9, (this_week - start).days)):
            for k in range(limit):
                week = monday(start + timedelta(days=k))
                if week.month != (week + timedelta(days=6)).month:
                    self.hist.crossing_week = week
                    return [j for j in range(limit) if monday(start + timedelta(days=j)) == week]
        return []

    def bot(self) -> None:
        """An actor with no app account polling every 20-29 minutes for the last 52 hours: one
        unbroken run over two midnights, cut by fct_sessions at the end of the day after it
        began (its events on the last day belong to no session)."""
        if self.days < 4:
            return
        uid = BOT_ID
        self.hist.hashes[uid] = user_hash(self.key, str(uid))
        self.sessions += 1
        t = self.t_end - timedelta(hours=52)
        while t < self.t_end:
            self.client(WORKSPACES[-1], uid, "page_view", t, {"path": "/api/poll"})
            t += self.secs(20 * 60, 29 * 60)

    def activity(self, uid: int, ws: str, p: float, since: datetime) -> None:
        rng = self.rng
        last = since
        first_day = (since.date() - self.t0.date()).days
        for d in range(first_day, self.days):
            if rng.random() >= p * 0.97 ** (d - first_day):
                continue
            for _ in range(rng.choice((1, 1, 2))):
                start = self.t0 + timedelta(days=d) + self.secs(7 * 3600, 86400 - 300)
                start = max(start, last + timedelta(minutes=31) + self.secs(0, 3600))
                if start >= self.t_end:
                    return
                self.sessions += 1
                t = start
                self.client(ws, uid, "session_start", t, {})
                for _ in range(rng.randint(1, 11)):
                    g = rng.random()
                    gap = 1800 if g < 0.03 else rng.randrange(1200, 1800) if g < 0.1 else rng.randrange(5, 600)
                    t += timedelta(seconds=gap)
                    if rng.random() < 0.3:
                        self.client(ws, uid, "feature_used", t, {"feature": rng.choice(FEATURES)})
                    else:
                        self.client(ws, uid, "page_view", t, {"path": rng.choice(PAGES)})
                last = t

    def money(self) -> None:
        rng, hist = self.rng, self.hist
        next_order, next_sub = BASE_ID, BASE_ID
        for uid in hist.user_ids:
            since = hist.signed_up_at[uid]
            left = (self.t_end - since).total_seconds()
            if left < 7200:
                continue
            if rng.random() < 0.35:
                for _ in range(rng.randint(1, 4)):
                    created = since + timedelta(seconds=rng.randrange(3600, int(left)))
                    refunded = None
                    if rng.random() < 0.15:
                        refunded = created + self.secs(600, 5 * 86400)
                        if refunded >= self.t_end:
                            refunded = None
                    hist.orders.append(Order(next_order, uid, rng.randrange(500, 20_000), created, refunded))
                    self.server(uid, "order_placed", created, {"path": "/checkout"})
                    next_order += 1
            if rng.random() < 0.4:
                started = since + timedelta(seconds=rng.randrange(600, int(left)))
                plan = rng.choice(list(PLANS))
                if rng.random() < 0.1:  # changed plan since: the replica keeps only the current one
                    plan = rng.choice([p for p in PLANS if p != plan])
                cancelled = None
                r = rng.random()
                if r < 0.05:
                    cancelled = started + self.secs(60, 3600)  # cancelled soon after (often the same day)
                elif r < 0.25:
                    cancelled = started + self.secs(3600, 20 * 86400)
                if cancelled is not None and cancelled >= self.t_end:
                    cancelled = None
                hist.subscriptions.append(Subscription(next_sub, uid, plan, PLANS[plan], started, cancelled))
                next_sub += 1


def load_product_history(
    clickhouse: ClickHouseResource,
    postgres: PostgresResource,
    start: date,
    days: int,
    seed: int,
    user_hash_key: str,
    hold_late: bool = False,
) -> ProductHistory:
    """Write the history for ``seed`` over the days start..start+days-1 (replacing an earlier
    load of this module's rows) and return its record. With ``hold_late`` the late client
    events are not written: ``load_late_events`` writes them afterwards."""
    b = _Builder(start, days, seed, user_hash_key)
    hist = b.build()
    lo, hi = BASE_ID, BASE_ID + ID_SPAN
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM events WHERE user_id >= %s AND user_id < %s", (lo, hi))
        cur.execute("DELETE FROM orders WHERE order_id >= %s AND order_id < %s", (lo, hi))
        cur.execute("DELETE FROM subscriptions WHERE subscription_id >= %s AND subscription_id < %s", (lo, hi))
        cur.execute("DELETE FROM users WHERE user_id >= %s AND user_id < %s", (lo, hi))
        cur.executemany(
            "INSERT INTO users (user_id, email, name, country, plan, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, 'free', %s, %s)",
            [
                (uid, f"hist{uid}@example.com", f"History {uid}", hist.countries[uid], t, t)
                for uid, t in hist.signed_up_at.items()
            ],
        )
        # Orders and subscriptions are inserted as placed/started, then refunded/cancelled by
        # an UPDATE (the replica sees the change, as it would in production).
        cur.executemany(
            "INSERT INTO orders (order_id, user_id, amount_cents, currency, status, created_at, updated_at) "
            "VALUES (%s, %s, %s, 'USD', 'paid', %s, %s)",
            [(o.order_id, o.user_id, o.amount_cents, o.created_at, o.created_at) for o in hist.orders],
        )
        cur.executemany(
            "UPDATE orders SET status = 'refunded', updated_at = %s WHERE order_id = %s",
            [(o.refunded_at, o.order_id) for o in hist.orders if o.refunded_at is not None],
        )
        cur.executemany(
            "INSERT INTO subscriptions (subscription_id, user_id, plan, mrr_cents, status, started_at, updated_at) "
            "VALUES (%s, %s, %s, %s, 'active', %s, %s)",
            [
                (s.subscription_id, s.user_id, s.plan, s.mrr_cents, s.started_at, s.started_at)
                for s in hist.subscriptions
            ],
        )
        cur.executemany(
            "UPDATE subscriptions SET status = 'cancelled', cancelled_at = %s, updated_at = %s "
            "WHERE subscription_id = %s",
            [(s.cancelled_at, s.cancelled_at, s.subscription_id) for s in hist.subscriptions if s.cancelled_at],
        )
        cur.executemany(
            "INSERT INTO events (event_id, user_id, occurred_at, event_name, properties) VALUES (%s, %s, %s, %s, %s)",
            [(eid, uid, t, name, Jsonb(props)) for eid, uid, t, name, props in b.pg_events],
        )
        conn.commit()
    with clickhouse.client() as ch:
        ch.command(
            f"DELETE FROM raw.product_events WHERE startsWith(session_id, '{SESSION_PREFIX}')",
            settings={"mutations_sync": 2},
        )
        ch.insert("raw.product_events", b.raw, column_names=PRODUCT_EVENT_COLUMNS)
    hist.raw_rows = len(b.raw)
    if not hold_late:
        load_late_events(clickhouse, hist)
    return hist


def load_late_events(clickhouse: ClickHouseResource, hist: ProductHistory) -> None:
    """Write the late client events of ``hist`` (and their Kafka copies) into raw.product_events."""
    with clickhouse.client() as ch:
        ch.insert("raw.product_events", hist.late_rows, column_names=PRODUCT_EVENT_COLUMNS)
    hist.raw_rows += len(hist.late_rows)
