"""Deterministic OpenTelemetry metrics and logs for the OTel marts, with the answers they must give.

``load_otel_history`` writes, straight into ``raw.otel_metrics_histogram``, ``raw.otel_logs`` and
``raw.spans`` (the columns the OpenTelemetry Collector's ClickHouse exporter writes), 40 minutes
of a small system around midnight between ``day`` and the next day:

- ``http.server.request.duration`` histograms (seconds) of ``shop-api``: instance ``shop-1``
  CUMULATIVE, restarting after midnight (a new StartTimeUnix); ``shop-2`` DELTA; ``shop-3``
  CUMULATIVE with a silent reset (its counts drop under the same StartTimeUnix); ``shop-4``
  CUMULATIVE, started three days earlier and first seen after midnight (its first point is only
  a baseline, since nothing before it was read);
- ``gen_ai.client.operation.duration`` (seconds) and ``gen_ai.client.token.usage`` (tokens)
  histograms of ``assistant``, cumulative and delta, with ``error.type`` on failed calls and an
  ``app.feature`` attribute on token records;
- log records of every severity, some with the trace and span of a request (those traces'
  spans go to raw.spans), one without a SeverityNumber;
- exact copies of some points and records, inserted again (a Kafka redelivery, a resend).

Each observation (a latency, a token count) is drawn from one RNG seeded with ``seed``, and the
record keeps, per exported point, the observations of its interval, so ``OtelHistory`` computes
in plain Python what the marts must contain, sharing no code with the SQL. Definitions: a
point's observations count in the minute of its TimeUnix; buckets are upper-inclusive
((b[i-1], b[i]]); quantiles from buckets as Prometheus' histogram_quantile (``bucket_quantile``).
"""

from __future__ import annotations

import bisect
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from platform_assets.core.resources import ClickHouseResource
from platform_assets.synthetic.history_agents import Span, insert_spans

# Bucket bounds the semantic conventions advise for these instruments.
HTTP_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
LLM_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BOUNDS = [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0]

HTTP_METRIC = "http.server.request.duration"
LLM_METRIC = "gen_ai.client.operation.duration"
TOKEN_METRIC = "gen_ai.client.token.usage"
EXPORT_S = 60  # the SDKs' export interval
CUMULATIVE, DELTA = 2, 1  # AggregationTemporality

HISTOGRAM_COLUMNS = [
    "ResourceAttributes", "ScopeName", "ScopeVersion", "ServiceName", "MetricName", "MetricDescription",
    "MetricUnit", "Attributes", "StartTimeUnix", "TimeUnix", "Count", "Sum", "BucketCounts", "ExplicitBounds",
    "AggregationTemporality", "kafka_partition", "kafka_offset",
]  # fmt: skip
LOG_COLUMNS = [
    "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber", "ServiceName", "Body",
    "ResourceAttributes", "ScopeName", "LogAttributes", "kafka_partition", "kafka_offset",
]  # fmt: skip

# (SeverityNumber, SeverityText, the bucket staging must name)
SEVERITIES = [
    (5, "DEBUG", "DEBUG"),
    (9, "INFO", "INFO"),
    (13, "WARN", "WARN"),
    (17, "ERROR", "ERROR"),
    (21, "FATAL", "FATAL"),
]


def bucket_counts(values: list[float], bounds: list[float]) -> list[int]:
    """Counts per explicit bucket (b[i-1], b[i]], the last one (b[-1], +inf)."""
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[bisect.bisect_left(bounds, v)] += 1
    return counts


def bucket_quantile(q: float, counts: list[int], bounds: list[float]) -> float | None:
    """The q-quantile estimated from bucket counts as Prometheus' histogram_quantile does: the
    first bucket whose cumulative count reaches q x total, linear within it (lower bound 0 for
    the first bucket); a rank in the +inf bucket gives the highest finite bound."""
    total = sum(counts)
    if not bounds or total == 0:
        return None
    rank = q * total
    cumulative = [sum(counts[: j + 1]) for j in range(len(counts))]
    i = next(j for j, c in enumerate(cumulative) if c >= rank)
    below = cumulative[i - 1] if i else 0
    if i == len(bounds):
        return bounds[-1]
    if i == 0 and bounds[0] <= 0:
        return bounds[0]
    lower = 0.0 if i == 0 else bounds[i - 1]
    return lower + (bounds[i] - lower) * ((rank - below) / counts[i])


def bucket_index(value: float, bounds: list[float]) -> int:
    return bisect.bisect_left(bounds, value)


@dataclass
class Interval:
    """The observations one exported point adds, and the minute they count in."""

    metric: str
    service: str
    attributes: dict[str, str]
    bounds: list[float]
    time_unix: datetime
    observations: list[float]
    counted: bool = True  # False: a baseline point whose interval nobody can know

    @property
    def minute(self) -> datetime:
        return self.time_unix.replace(second=0, microsecond=0)


@dataclass
class LogRecord:
    at: datetime
    service: str
    severity_number: int
    severity_text: str
    severity: str  # the bucket name the staging model must give
    body: str
    trace_id: str
    span_id: str
    attributes: dict[str, str]


@dataclass
class OtelHistory:
    day: date
    workspace: str
    histogram_rows: list[list[Any]] = field(default_factory=list)  # unique points, HISTOGRAM_COLUMNS order
    duplicate_points: list[list[Any]] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    duplicate_logs: list[LogRecord] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    series_starts: dict[str, datetime] = field(default_factory=dict)  # instance -> a StartTimeUnix

    # ---- what the marts must contain ----------------------------------------------------------

    def _grouped(self, metric: str, dims: list[str]) -> dict[tuple, list[Interval]]:
        out: dict[tuple, list[Interval]] = defaultdict(list)
        for iv in self.intervals:
            if iv.metric == metric and iv.counted and iv.observations:
                key = (iv.minute, self.workspace, iv.service, *(_dim(iv.attributes, d) for d in dims), tuple(iv.bounds))
                out[key].append(iv)
        return out

    def latency_1m(self, metric: str, dims: list[str]) -> dict[tuple, dict[str, Any]]:
        """key (minute, workspace, service, *dims, bounds) -> calls, errors, success_rate,
        bucket_counts, p50/p95/p99 from the buckets, and the observations themselves."""
        out = {}
        for key, ivs in self._grouped(metric, dims).items():
            values = [v for iv in ivs for v in iv.observations]
            errors = sum(len(iv.observations) for iv in ivs if _failed(iv.attributes))
            bounds = list(key[-1])
            counts = bucket_counts(values, bounds)
            out[key] = {
                "calls": len(values),
                "errors": errors,
                "success_rate": 1 - errors / len(values),
                "bucket_counts": counts,
                "p50_seconds": bucket_quantile(0.5, counts, bounds),
                "p95_seconds": bucket_quantile(0.95, counts, bounds),
                "p99_seconds": bucket_quantile(0.99, counts, bounds),
                "observations": values,
            }
        return out

    def route_latency_1m(self) -> dict[tuple, dict[str, Any]]:
        return self.latency_1m(HTTP_METRIC, ["route", "method"])

    def llm_latency_1m(self) -> dict[tuple, dict[str, Any]]:
        return self.latency_1m(LLM_METRIC, ["model", "provider", "operation"])

    def token_usage_1m(self) -> dict[tuple, dict[str, int]]:
        """key (minute, workspace, service, model, token_type, sorted attribute items) -> tokens, records."""
        out: dict[tuple, dict[str, int]] = defaultdict(lambda: {"tokens": 0, "records": 0})
        for iv in self.intervals:
            if iv.metric == TOKEN_METRIC and iv.counted and iv.observations:
                a = iv.attributes
                key = (iv.minute, self.workspace, iv.service, a["gen_ai.request.model"], a["gen_ai.token.type"],
                       tuple(sorted(a.items())))  # fmt: skip
                out[key]["tokens"] += int(sum(iv.observations))
                out[key]["records"] += len(iv.observations)
        return dict(out)

    def log_volume_1m(self) -> dict[tuple, int]:
        """key (minute, workspace, service, severity) -> records (each unique record once)."""
        out: dict[tuple, int] = defaultdict(int)
        for r in self.logs:
            out[(r.at.replace(second=0, microsecond=0), self.workspace, r.service, r.severity)] += 1
        return dict(out)

    def error_logs(self) -> list[LogRecord]:
        return [r for r in self.logs if r.severity in ("ERROR", "FATAL")]


def _dim(attributes: dict[str, str], dim: str) -> str:
    names = {
        "route": ["http.route"],
        "method": ["http.request.method"],
        "model": ["gen_ai.response.model", "gen_ai.request.model"],
        "provider": ["gen_ai.provider.name", "gen_ai.system"],
        "operation": ["gen_ai.operation.name"],
    }[dim]
    return next((attributes[n] for n in names if attributes.get(n)), "")


def _failed(attributes: dict[str, str]) -> bool:
    return int(attributes.get("http.response.status_code", "0")) >= 500 or bool(attributes.get("error.type"))


@dataclass
class _Series:
    instance: str
    service: str
    scope: str
    metric: str
    unit: str
    attributes: dict[str, str]
    bounds: list[float]
    temporality: int


class _Builder:
    def __init__(self, day: date, seed: int, workspace: str) -> None:
        self.rng = random.Random(seed)
        self.h = OtelHistory(day, workspace)
        self.midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        self.offset = 0

    def at(self, minutes: float) -> datetime:
        """A time relative to the midnight after ``day``."""
        return self.midnight + timedelta(seconds=round(minutes * 60, 6))

    def _observe(self, s: _Series, n_max: int) -> list[float]:
        n = self.rng.randrange(n_max + 1)
        if s.metric == TOKEN_METRIC:
            hi = 3000 if s.attributes["gen_ai.token.type"] == "input" else 800
            return [float(self.rng.randrange(5, hi)) for _ in range(n)]
        scale = 0.04 if s.metric == HTTP_METRIC else 0.9
        return [round(self.rng.lognormvariate(0, 0.9) * scale, 6) for _ in range(n)]

    def _row(self, s: _Series, start: datetime, at: datetime, values: list[float]) -> list[Any]:
        self.offset += 1
        resource = {"service.name": s.service, "service.instance.id": s.instance, "tenant.id": self.h.workspace}
        return [
            resource, s.scope, "1.0", s.service, s.metric, "", s.unit, s.attributes, start, at, len(values),
            float(sum(values)), bucket_counts(values, s.bounds), s.bounds, s.temporality, 0, self.offset,
        ]  # fmt: skip

    def series(self, s: _Series, start: datetime, exports: list[datetime], n_max: int = 8, baseline: bool = False,
               reset_at: datetime | None = None) -> None:  # fmt: skip
        """Points of one series exported at ``exports``. Cumulative: totals since ``start`` (or
        since ``reset_at``, a restart the SDK did not mark, for the points after it). Delta: each
        point its interval's observations. ``baseline``: the series ran before what is loaded, its
        first point's totals include unknown earlier observations."""
        self.h.series_starts.setdefault(s.instance, start)
        total: list[float] = [0.01] * 25 if baseline else []  # observations before the first point
        prev = start
        for i, at in enumerate(exports):
            values = self._observe(s, n_max)
            if reset_at is not None and prev < reset_at < at:
                total = []  # the process restarted: nothing before reset_at is in its totals any more
            total = total + values
            if s.temporality == CUMULATIVE:
                self.h.histogram_rows.append(self._row(s, start, at, total))
            else:
                self.h.histogram_rows.append(self._row(s, prev, at, values))
            counted = not (baseline and i == 0)
            self.h.intervals.append(Interval(s.metric, s.service, s.attributes, s.bounds, at, values, counted))
            prev = at

    def build(self) -> OtelHistory:
        minute = [self.at(m + 0.5) for m in range(-20, 21)]  # exports at hh:mm:30, 23:40:30 .. 00:20:30
        http = "opentelemetry.instrumentation.fastapi"
        routes = [
            ({"http.route": "/orders", "http.request.method": "GET", "http.response.status_code": "200"}, 10),
            ({"http.route": "/orders", "http.request.method": "POST", "http.response.status_code": "201"}, 4),
            ({"http.route": "/orders", "http.request.method": "POST", "http.response.status_code": "503",
              "error.type": "503"}, 2),
            ({"http.route": "/health", "http.request.method": "GET", "http.response.status_code": "200"}, 3),
        ]  # fmt: skip
        for attrs, n in routes:
            s = _Series("shop-1", "shop-api", http, HTTP_METRIC, "s", attrs, HTTP_BOUNDS, CUMULATIVE)
            # runs until 00:05:30, restarts at 00:06:10 (a new StartTimeUnix), exports again from 00:06:30
            self.series(s, self.at(-20.4), minute[:26], n)
            self.series(s, self.at(6 + 10 / 60), minute[26:], n)
        for attrs in (
            {"http.route": "/orders", "http.request.method": "GET", "http.response.status_code": "200"},
            {"http.route": "/orders", "http.request.method": "GET", "http.response.status_code": "500",
             "error.type": "500"},
        ):  # fmt: skip
            self.series(_Series("shop-2", "shop-api", http, HTTP_METRIC, "s", attrs, HTTP_BOUNDS, DELTA),
                        self.at(-20.5), minute, 6)  # fmt: skip
        cart = {"http.route": "/cart", "http.request.method": "PUT", "http.response.status_code": "200"}
        self.series(_Series("shop-3", "shop-api", http, HTTP_METRIC, "s", cart, HTTP_BOUNDS, CUMULATIVE),
                    self.at(-20.3), minute, 6, reset_at=self.at(-5 + 0.75))  # fmt: skip
        self.series(_Series("shop-4", "shop-api", http, HTTP_METRIC, "s", cart, HTTP_BOUNDS, CUMULATIVE),
                    self.at(-3 * 24 * 60), minute[20:27], 6, baseline=True)  # fmt: skip

        llm = "opentelemetry.instrumentation.openai"
        calls = [
            ({"gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai",
              "gen_ai.operation.name": "chat"}, CUMULATIVE, 6),
            ({"gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai",
              "gen_ai.operation.name": "chat", "error.type": "timeout"}, CUMULATIVE, 2),
            ({"gen_ai.request.model": "claude-sonnet-4", "gen_ai.system": "anthropic",
              "gen_ai.operation.name": "chat"}, DELTA, 5),
        ]  # fmt: skip
        for attrs, temporality, n in calls:
            s = _Series("assistant-1", "assistant", llm, LLM_METRIC, "s", attrs, LLM_BOUNDS, temporality)
            self.series(s, self.at(-20.45), minute, n)
        for model, temporality in (("gpt-4o-mini", CUMULATIVE), ("claude-sonnet-4", DELTA)):
            for feature in ("search", "summarize"):
                for token_type in ("input", "output"):
                    attrs = {"gen_ai.request.model": model, "gen_ai.operation.name": "chat",
                             "gen_ai.token.type": token_type, "app.feature": feature}  # fmt: skip
                    s = _Series("assistant-1", "assistant", llm, TOKEN_METRIC, "{token}", attrs, TOKEN_BOUNDS,
                                temporality)  # fmt: skip
                    self.series(s, self.at(-20.45), minute, 4)

        # Copies of points (a cumulative one across midnight, a delta one, a token one).
        rows = self.h.histogram_rows
        picks = [i for i, r in enumerate(rows) if r[9] in (self.at(0.5), self.at(-0.5), self.at(3.5))]
        self.h.duplicate_points = [rows[i] for i in picks[::5]]
        self._logs()
        return self.h

    def _logs(self) -> None:
        for m in range(-20, 21):
            for _ in range(self.rng.randrange(1, 6)):
                number, text, bucket = self.rng.choice(SEVERITIES)
                at = self.at(m + self.rng.randrange(60_000_000) / 60_000_000)
                trace_id = span_id = ""
                if number >= 17 and self.rng.random() < 0.8:
                    trace_id, span_id = self._trace(at)
                self._log(at, number, text, bucket, f"{text.lower()} in request {self.rng.getrandbits(32):08x}",
                          trace_id, span_id)  # fmt: skip
        # A record without a number (severity from its text), and an error just before midnight
        # whose trace ends after it.
        self._log(self.at(-7.25), 0, "WARNING", "WARN", "disk 91% full", "", "")
        trace_id, span_id = self._trace(self.at(-1 / 60 - 0.002), crosses_midnight=True)
        self._log(self.at(-1 / 600), 17, "ERROR", "ERROR", "payment provider timeout", trace_id, span_id,
                  {"exception.type": "TimeoutError"})  # fmt: skip
        self.h.duplicate_logs = self.h.logs[::9]

    def _log(self, at: datetime, number: int, text: str, bucket: str, body: str, trace_id: str, span_id: str,
             extra: dict[str, str] | None = None) -> None:  # fmt: skip
        attrs = {"code.function": "handle", **(extra or {})}
        self.h.logs.append(LogRecord(at, "shop-api", number, text, bucket, body, trace_id, span_id, attrs))

    def _trace(self, at: datetime, crosses_midnight: bool = False) -> tuple[str, str]:
        """Three spans of a request around ``at`` (root, handler, db): (trace id, the handler's span id)."""
        trace_id = f"{self.rng.getrandbits(128):032x}"
        ids = [f"{self.rng.getrandbits(64):016x}" for _ in range(3)]
        start_ms = int(at.timestamp() * 1000) - 20
        length = 4000 if crosses_midnight else 60
        parents = ["", ids[0], ids[1]]
        for i, (span_id, parent) in enumerate(zip(ids, parents, strict=True)):
            # root, handler, then a db call (across midnight: it starts on the next day)
            begin = start_ms + (1500 if crosses_midnight and i == 2 else i * 5)
            end = start_ms + length - i * 5
            operation = ["POST /orders", "create_order", "db"][i]
            kind, status = (2 if i == 0 else 1), (2 if i == 1 else 0)  # a server root; the handler errs
            message = "boom" if status == 2 else ""
            self.h.spans.append(
                Span(trace_id, span_id, parent, self.h.workspace, "shop-api", operation, kind, status, message,
                     begin, end, {}, len(self.h.spans))
            )  # fmt: skip
        return trace_id, ids[1]


def build_otel_history(day: date, seed: int, workspace: str) -> OtelHistory:
    """The record of what load_otel_history writes (deterministic for day, seed and workspace)."""
    return _Builder(day, seed, workspace).build()


def _log_row(r: LogRecord, workspace: str, offset: int) -> list[Any]:
    resource = {"service.name": r.service, "tenant.id": workspace, "deployment.environment.name": "history"}
    return [r.at, r.trace_id.upper(), r.span_id.upper(), 1 if r.trace_id else 0, r.severity_text, r.severity_number,
            r.service, r.body, resource, "app.logging", r.attributes, 0, offset]  # fmt: skip


def load_otel_history(clickhouse: ClickHouseResource, day: date, seed: int, workspace: str) -> OtelHistory:
    """Writes the history into the raw tables; the copies go in a second insert (another part)."""
    h = build_otel_history(day, seed, workspace)
    with clickhouse.client() as ch:
        ch.insert("raw.otel_metrics_histogram", h.histogram_rows, column_names=HISTOGRAM_COLUMNS)
        ch.insert("raw.otel_logs", [_log_row(r, workspace, i) for i, r in enumerate(h.logs)], column_names=LOG_COLUMNS)
        insert_spans(ch, h.spans)
        ch.insert("raw.otel_metrics_histogram", h.duplicate_points, column_names=HISTOGRAM_COLUMNS)
        ch.insert("raw.otel_logs", [_log_row(r, workspace, i) for i, r in enumerate(h.duplicate_logs)],
                  column_names=LOG_COLUMNS)  # fmt: skip
    return h
