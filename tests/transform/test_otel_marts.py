"""OpenTelemetry metric and log marts on the real stack equal the answers of a deterministic record.

The record (platform_assets.synthetic.otel_signals) is written straight into raw.otel_metrics_histogram,
raw.otel_logs and raw.spans around the midnight between two past days of this module's own
(today-45 and today-44): cumulative and delta histogram series with known observations, a
process restart (new StartTimeUnix), a silent counter reset, a series first seen after midnight
whose start is days older, exact copies of points and log records. dbt builds the staging
models and marts for the two days; every figure is compared with what plain Python computes
from the observations themselves: counts exactly, bucket-interpolated percentiles exactly equal
to the Prometheus-style estimate from the same buckets and within one bucket of the exact
percentile of the observations.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from platform_assets.synthetic import otel_signals as otel

pytestmark = pytest.mark.integration

DAY = datetime.now(UTC).date() - timedelta(days=45)  # the midnight between DAY and DAY + 1 is the record's middle
NEXT = DAY + timedelta(days=1)
WORKSPACE = "ws_otel_marts"
SEED = 4545
MODELS = [
    "mart_route_latency_1m",
    "mart_llm_latency_1m",
    "mart_token_usage_1m",
    "mart_log_volume_1m",
    "fct_error_logs",
    "fct_error_trace_spans",
]
LATENCY = ["calls", "errors", "success_rate", "bucket_counts", "p50_seconds", "p95_seconds", "p99_seconds"]


def window(start: date, end_inclusive: date) -> dict[str, str]:
    return {"min_date": start.isoformat(), "max_date": (end_inclusive + timedelta(days=1)).isoformat()}


def _utc(v: Any) -> Any:
    """Datetimes from the server as aware UTC, the record's form."""
    if not isinstance(v, datetime):
        return v
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


@pytest.fixture(scope="module")
def record(platform_ready, dbt) -> otel.OtelHistory:
    h = otel.load_otel_history(platform_ready["clickhouse"], DAY, SEED, WORKSPACE)
    dbt("seed")
    dbt("build", "--select", *(f"+{m}" for m in MODELS), vars=window(DAY, NEXT))
    return h


@pytest.fixture(scope="module")
def ch(platform_ready):
    with platform_ready["clickhouse"].client() as client:
        yield client


def latency_rows(ch, mart: str, dims: list[str], calls: str) -> dict[tuple, dict[str, Any]]:
    cols = ["minute", "workspace_id", "service", *dims, "explicit_bounds"]
    values = [calls, "errors", "success_rate", "bucket_counts", "p50_seconds", "p95_seconds", "p99_seconds"]
    sql = f"SELECT {', '.join(cols + values)} FROM marts.{mart} WHERE workspace_id = {{ws:String}}"
    out: dict[tuple, dict[str, Any]] = {}
    for row in ch.query(sql, parameters={"ws": WORKSPACE}).result_rows:
        key = (_utc(row[0]), *row[1 : len(cols) - 1], tuple(row[len(cols) - 1]))
        assert key not in out, f"{mart}: duplicate key {key}"
        out[key] = dict(zip(LATENCY, row[len(cols) :], strict=True))
    return out


def assert_latency_equal(got: dict[tuple, dict], expected: dict[tuple, dict], mart: str) -> None:
    assert set(got) == set(expected), (sorted(set(expected) - set(got))[:3], sorted(set(got) - set(expected))[:3])
    for key, exp in expected.items():
        row = got[key]
        assert row["calls"] == exp["calls"] and row["errors"] == exp["errors"], (mart, key, row, exp)
        assert list(row["bucket_counts"]) == exp["bucket_counts"], (mart, key)
        assert row["success_rate"] == pytest.approx(exp["success_rate"], rel=1e-12), (mart, key)
        for q in ("p50_seconds", "p95_seconds", "p99_seconds"):
            # the same estimate from the same buckets, computed independently: exactly equal
            assert row[q] == exp[q], (mart, key, q, row[q], exp[q])


def test_record_shape(record):
    """The record has what the marts must handle: both temporalities, a restart, a silent reset,
    a baseline-only point, copies of cumulative, delta and token points, and of log records."""
    rows = record.histogram_rows
    assert {r[14] for r in rows} == {otel.CUMULATIVE, otel.DELTA}
    shop_1 = {(tuple(sorted(r[7].items())), r[8]) for r in rows if r[0]["service.instance.id"] == "shop-1"}
    assert len(shop_1) == 8  # 4 attribute sets x 2 process starts
    assert sum(not iv.counted for iv in record.intervals) == 1
    dup = record.duplicate_points
    assert {r[14] for r in dup} == {otel.CUMULATIVE, otel.DELTA} and {r[4] for r in dup} >= {otel.HTTP_METRIC}
    assert record.duplicate_logs and {r.severity for r in record.logs} == {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
    assert otel.build_otel_history(DAY, SEED, WORKSPACE).histogram_rows == rows


def test_route_latency_counts_buckets_and_interpolated_percentiles(ch, record):
    expected = record.route_latency_1m()
    got = latency_rows(ch, "mart_route_latency_1m", ["route", "method"], "requests")
    assert_latency_equal(got, expected, "mart_route_latency_1m")


def nearest_rank(values: list[float], q: float) -> float:
    """The exact q-quantile of the observations by nearest rank: the ceil(q x n)-th smallest."""
    return sorted(values)[max(1, math.ceil(q * len(values))) - 1]


def test_route_percentiles_are_within_one_bucket_of_the_exact_ones(ch, record):
    """Per minute, each estimate lies in the bucket of the exact nearest-rank quantile of the
    raw observations (so within one bucket's width of it), whatever the number of requests."""
    got = latency_rows(ch, "mart_route_latency_1m", ["route", "method"], "requests")
    for key, exp in record.route_latency_1m().items():
        bounds = list(key[-1])
        for q, col in ((0.5, "p50_seconds"), (0.95, "p95_seconds"), (0.99, "p99_seconds")):
            exact = nearest_rank(exp["observations"], q)
            assert otel.bucket_index(got[key][col], bounds) == otel.bucket_index(exact, bounds), (key, col, exact)
    assert len(got) > 100


def test_merged_minutes_give_the_ranges_percentiles_not_an_average(ch, record):
    """Buckets summed over the whole record per route (as the dashboards merge minutes): the
    estimate equals the one from the buckets of all its observations, and lies within one
    bucket of numpy's (linear) percentile of those observations."""
    rows = ch.query(
        "SELECT route, method, explicit_bounds, sumForEach(bucket_counts), sum(requests) "
        "FROM marts.mart_route_latency_1m WHERE workspace_id = {ws:String} GROUP BY route, method, explicit_bounds",
        parameters={"ws": WORKSPACE},
    ).result_rows
    observed: dict[tuple, list[float]] = {}
    for iv in record.intervals:
        if iv.metric == otel.HTTP_METRIC and iv.counted:
            observed.setdefault((iv.attributes["http.route"], iv.attributes["http.request.method"]), []).extend(
                iv.observations
            )
    assert {(r[0], r[1]) for r in rows} == set(observed)
    for route, method, bounds, buckets, requests in rows:
        values = observed[(route, method)]
        assert requests == len(values) >= 50 and list(buckets) == otel.bucket_counts(values, bounds)
        estimate = otel.bucket_quantile(0.95, list(buckets), bounds)
        assert estimate is not None
        exact = float(np.percentile(values, 95))
        assert abs(otel.bucket_index(estimate, bounds) - otel.bucket_index(exact, bounds)) <= 1, (
            route,
            estimate,
            exact,
        )


def test_no_observation_is_counted_twice_or_lost(ch, record):
    """Totals over both days: every counted observation once, whatever the temporality, the
    copies, the restart across midnight and the silent reset; the baseline point not at all."""
    counted: Counter[str] = Counter()
    for iv in record.intervals:
        if iv.metric == otel.HTTP_METRIC and iv.counted:
            counted[iv.attributes["http.route"]] += len(iv.observations)
    rows = ch.query(
        "SELECT route, sum(requests) FROM marts.mart_route_latency_1m WHERE workspace_id = {ws:String} GROUP BY route",
        parameters={"ws": WORKSPACE},
    ).result_rows
    assert dict(rows) == dict(counted)
    baseline = next(iv for iv in record.intervals if not iv.counted)
    staged = ch.query(
        "SELECT count(), countIf(is_series_start), countIf(time_unix = {t:DateTime64(9, 'UTC')}) "
        "FROM staging.stg_kafka__metric_histograms WHERE workspace_id = {ws:String} AND route = '/cart'",
        parameters={"ws": WORKSPACE, "t": baseline.time_unix},
    ).result_rows[0]
    # /cart: shop-3 (41 points, its first and the one after the silent reset start a series),
    # shop-4 (7 points, the first only a baseline, so not staged).
    assert staged == (41 + 6, 2, 1)


def test_success_rate_by_route(ch, record):
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for iv in record.intervals:
        if iv.metric == otel.HTTP_METRIC and iv.counted:
            route = iv.attributes["http.route"]
            calls[route] += len(iv.observations)
            errors[route] += len(iv.observations) * (int(iv.attributes["http.response.status_code"]) >= 500)
    rows = ch.query(
        "SELECT route, 1 - sum(errors) / sum(requests) FROM marts.mart_route_latency_1m "
        "WHERE workspace_id = {ws:String} GROUP BY route",
        parameters={"ws": WORKSPACE},
    ).result_rows
    assert dict(rows) == pytest.approx({r: 1 - errors[r] / c for r, c in calls.items()}, rel=1e-12)
    assert dict(rows)["/health"] == 1.0 and dict(rows)["/orders"] < 1.0


def test_llm_latency_by_model(ch, record):
    expected = record.llm_latency_1m()
    got = latency_rows(ch, "mart_llm_latency_1m", ["model", "provider", "operation"], "calls")
    assert_latency_equal(got, expected, "mart_llm_latency_1m")
    assert {k[3:5] for k in got} == {("gpt-4o-mini", "openai"), ("claude-sonnet-4", "anthropic")}
    assert any(v["errors"] for v in got.values())


def test_tokens_per_minute_by_model_type_and_attributes(ch, record):
    rows = ch.query(
        "SELECT minute, workspace_id, service, model, token_type, attributes, tokens, records "
        "FROM marts.mart_token_usage_1m WHERE workspace_id = {ws:String}",
        parameters={"ws": WORKSPACE},
    ).result_rows
    got = {(_utc(r[0]), r[1], r[2], r[3], r[4], tuple(sorted(r[5].items()))): {"tokens": r[6], "records": r[7]}
           for r in rows}  # fmt: skip
    assert got == record.token_usage_1m()
    by_feature = ch.query(
        "SELECT attributes['app.feature'], sum(tokens) FROM marts.mart_token_usage_1m "
        "WHERE workspace_id = {ws:String} GROUP BY 1 ORDER BY 1",
        parameters={"ws": WORKSPACE},
    ).result_rows
    want: Counter[str] = Counter()
    for key, v in record.token_usage_1m().items():
        want[dict(key[5])["app.feature"]] += v["tokens"]
    assert dict(by_feature) == dict(want) and set(want) == {"search", "summarize"}


def test_log_volume_by_severity_counts_each_record_once(ch, record):
    rows = ch.query(
        "SELECT minute, workspace_id, service, severity, records FROM marts.mart_log_volume_1m "
        "WHERE workspace_id = {ws:String}",
        parameters={"ws": WORKSPACE},
    ).result_rows
    assert {(_utc(r[0]), *r[1:4]): r[4] for r in rows} == record.log_volume_1m()
    raw = ch.query("SELECT count() FROM raw.otel_logs WHERE ResourceAttributes['tenant.id'] = {ws:String}",
                   parameters={"ws": WORKSPACE}).result_rows[0][0]  # fmt: skip
    assert raw == len(record.logs) + len(record.duplicate_logs) > sum(r[4] for r in rows) == len(record.logs)
    # The record without a SeverityNumber is named from its text.
    assert ("WARN",) in ch.query(
        "SELECT severity FROM staging.stg_kafka__logs WHERE workspace_id = {ws:String} AND severity_number = 0",
        parameters={"ws": WORKSPACE},
    ).result_rows


def test_error_logs_link_to_their_traces_spans(ch, record):
    errors = ch.query(
        "SELECT log_time, severity, trace_id, span_id, body FROM marts.fct_error_logs WHERE workspace_id = {ws:String}",
        parameters={"ws": WORKSPACE},
    ).result_rows
    want = sorted((r.at, r.severity, r.trace_id, r.span_id, r.body) for r in record.error_logs())
    assert sorted((_utc(e[0]), *e[1:]) for e in errors) == want
    spans = ch.query(
        "SELECT trace_id, span_id, span_date FROM marts.fct_error_trace_spans WHERE workspace_id = {ws:String}",
        parameters={"ws": WORKSPACE},
    ).result_rows
    traced = {r.trace_id for r in record.error_logs() if r.trace_id}
    assert {s[0] for s in spans} == traced
    assert sorted(s[:2] for s in spans) == sorted((s.trace_id, s.span_id) for s in record.spans if s.trace_id in traced)
    # The trace logged at 23:59:59.9 has a span that starts after midnight: on the next day's partition.
    late = next(r for r in record.error_logs() if r.body == "payment provider timeout")
    assert {s[2] for s in spans if s[0] == late.trace_id} == {DAY, NEXT}


def test_rebuilding_the_second_day_alone_differences_across_midnight(ch, record, dbt):
    """A run of NEXT only reads DAY's last cumulative points for its first deltas (and ignores the
    baseline): the day's rows are what the two-day run made."""

    def day_rows() -> list[tuple]:
        return ch.query(
            "SELECT minute, route, method, explicit_bounds, requests, bucket_counts, p95_seconds "
            "FROM marts.mart_route_latency_1m WHERE toDate(minute) = {d:Date} AND workspace_id = {ws:String} "
            "ORDER BY minute, route, method",
            parameters={"d": NEXT, "ws": WORKSPACE},
        ).result_rows

    before = day_rows()
    dbt("run", "--select", "stg_kafka__metric_histograms", "mart_route_latency_1m", vars=window(NEXT, NEXT))
    after = day_rows()
    assert after == before and len(after) > 50
    midnight = datetime.combine(NEXT, datetime.min.time(), UTC)
    first = [r for r in after if _utc(r[0]) == midnight]
    expected_first = sum(v["calls"] for k, v in record.route_latency_1m().items() if k[0] == midnight)
    assert sum(r[4] for r in first) == expected_first > 0
