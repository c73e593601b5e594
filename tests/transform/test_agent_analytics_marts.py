"""App-service, agent-health, prompt, model-drift and workspace-spend marts on the real stack
equal the answers of the deterministic agent history.

The history (platform_assets.synthetic.history_agents, the seed and window of
test_agent_marts.py, so the rows written are the same) goes into raw.spans and raw.agent_events
with its late rows held back; dbt builds the marts for the window, and each mart equals the
record of the history without those rows. The late rows then arrive, the window is re-run, and
each mart equals the whole record. The record computes every value in Python/numpy without the
SQL: integers compare exactly, floats with rel=1e-9, NULLs as None. A one-day run of
mart_workspace_spend_daily (which reads the 28 days before its window) gives the row of the
full build.

The module runs before test_agent_marts.py in a session (file order): that module adds late
rows of its own to the same workspaces, which this record does not know.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Any

import pytest

from platform_assets.synthetic import history_agents as ha

SEED = 20261  # test_agent_marts.SEED: the same history, the same rows
MODELS = [
    "mart_endpoint_latency_daily",
    "mart_agent_health_daily",
    "mart_agent_failures_daily",
    "mart_prompt_failures_daily",
    "mart_model_drift_daily",
    "mart_workspace_spend_daily",
]
# mart -> (key columns, value columns), in the order of the record's keys and values
SHAPES: dict[str, tuple[list[str], list[str]]] = {
    "mart_endpoint_latency_daily": (
        ["day", "workspace_id", "service", "service_version", "route"],
        ["requests", "errors", "error_rate", "p50_ms", "p95_ms"],
    ),
    "mart_agent_health_daily": (
        ["day", "workspace_id", "agent_name"],
        ["runs", "failed_runs", "failure_rate", "steps", "llm_steps", "tool_steps", "avg_steps_per_run", "timeouts"],
    ),
    "mart_agent_failures_daily": (["day", "workspace_id", "agent_name", "error_type"], ["failures"]),
    "mart_prompt_failures_daily": (
        ["day", "workspace_id", "prompt_hash"],
        ["calls", "failures", "failure_rate", "top_error_type", "top_error_type_failures"],
    ),
    "mart_model_drift_daily": (
        ["day", "workspace_id", "provider", "model"],
        ["calls", "avg_output_tokens", "p50_output_tokens", "p95_output_tokens", "refusals", "refusal_rate"],
    ),
    "mart_workspace_spend_daily": (
        ["day", "workspace_id"],
        [
            "cost_usd",
            "daily_limit_usd",
            "over_guardrail",
            "baseline_days",
            "trailing_28d_mean_usd",
            "trailing_28d_stddev_usd",
            "spend_z_score",
        ],
    ),
}
ABS = {"spend_z_score": 1e-9}  # a z-score near 0 is a difference of nearly equal numbers


def expected_rows(h: ha.AgentHistory, model: str) -> dict[tuple, dict[str, Any]]:
    by_model = {
        "mart_endpoint_latency_daily": h.endpoint_latency_daily,
        "mart_agent_health_daily": h.agent_health_daily,
        "mart_agent_failures_daily": h.agent_failures_daily,
        "mart_prompt_failures_daily": h.prompt_failures_daily,
        "mart_model_drift_daily": h.model_drift_daily,
        "mart_workspace_spend_daily": h.workspace_spend_daily,
    }
    # the history's own workspaces ('__all__' rows also count other modules' calls)
    return {k: v for k, v in by_model[model]().items() if k[1] in h.workspaces}


def read_mart(ch, model: str, h: ha.AgentHistory) -> dict[tuple, dict[str, Any]]:
    keys, values = SHAPES[model]
    sql = (
        f"SELECT {', '.join(keys + values)} FROM marts.{model} "
        "WHERE day BETWEEN {lo:Date} AND {hi:Date} AND workspace_id IN {ws:Array(String)} "
        f"ORDER BY {', '.join(keys)}"
    )
    out: dict[tuple, dict[str, Any]] = {}
    for row in ch.query(sql, parameters={"lo": h.start, "hi": h.end, "ws": h.workspaces}).result_rows:
        key = tuple(row[: len(keys)])
        assert key not in out, f"{model}: duplicate key {key}"
        out[key] = dict(zip(values, row[len(keys) :], strict=True))
    return out


def assert_mart_equals(actual: dict[tuple, dict], expected: dict[tuple, dict], model: str) -> None:
    missing = sorted(set(expected) - set(actual))[:5]
    extra = sorted(set(actual) - set(expected))[:5]
    assert not missing and not extra, f"{model}: missing keys {missing}, unexpected keys {extra}"
    for key, exp in expected.items():
        for col, want in exp.items():
            have = actual[key][col]
            if want is None or isinstance(want, bool | str) or (isinstance(want, int) and not isinstance(want, bool)):
                assert have == want, f"{model} {key} {col}: {have!r} != {want!r}"
            else:
                assert have is not None, f"{model} {key} {col}: NULL != {want}"
                approx = pytest.approx(want, rel=1e-9, abs=ABS.get(col, 1e-12))
                assert have == approx, f"{model} {key} {col}: {have} != {want}"


@pytest.fixture(scope="module")
def ch(platform_ready):
    with platform_ready["clickhouse"].client() as client:
        yield client


@pytest.fixture(scope="module")
def analytics(platform_ready, ch, dbt, history_window, dbt_window) -> dict[str, Any]:
    """The history without its late rows, built; then the late rows, the window re-run."""
    start, end = history_window
    res = platform_ready["clickhouse"]
    history = ha.load_agent_history(
        res, start, (end - start).days + 1, SEED, os.environ["USER_HASH_KEY"], hold_late=True
    )
    dbt("build", "--select", *(f"+{m}" for m in MODELS), vars=dbt_window(start, end))
    first = {m: read_mart(ch, m, history) for m in MODELS}
    late = ha.load_late_rows(res, history)
    dbt("run", "--select", *(f"+{m}" for m in MODELS), vars=dbt_window(start, end))
    return {"history": history, "first": first, "late": late}


@pytest.mark.unit
def test_record_is_deterministic():
    """Two builds of the history with the same arguments are the same rows and the same answers."""
    start = date(2026, 1, 1)
    one, two = (ha.build_agent_history(start, 35, SEED, "key") for _ in range(2))
    assert one == two and one.late == two.late and one.spike == two.spike
    for model in MODELS:
        assert expected_rows(one, model) == expected_rows(two, model), model
    other = ha.build_agent_history(start, 35, SEED + 1, "key")
    assert other.spans != one.spans
    # what the marts need is there: app requests, refusals, late rows, a spend spike
    assert any(s.kind == 2 and s.version for s in one.spans)
    assert any(e.status == "refused" for e in one.events)
    assert one.late and one.spike == (start + timedelta(days=ha.SPIKE_OFFSET), ha.SPIKE_WORKSPACE)
    over = [k for k, v in one.workspace_spend_daily().items() if v["over_guardrail"]]
    assert over == [one.spike]


@pytest.mark.integration
def test_first_build_lacks_the_late_rows(analytics):
    """Before the late rows land, every mart equals the record without them."""
    h = analytics["history"]
    assert analytics["late"] > 0
    before = h.without_late()
    late_day = h.start + timedelta(days=ha.LATE_OFFSET)
    for model in MODELS:
        expected = expected_rows(before, model)
        assert_mart_equals(analytics["first"][model], expected, model)
        full = expected_rows(h, model)
        late_keys = {k for k in full if k[0] == late_day}
        assert any(full[k] != expected.get(k) for k in late_keys), f"{model}: the late rows change nothing"


@pytest.mark.integration
@pytest.mark.parametrize("model", MODELS)
def test_mart_equals_the_record_after_the_late_rows(ch, analytics, model):
    h = analytics["history"]
    assert_mart_equals(read_mart(ch, model, h), expected_rows(h, model), model)


@pytest.mark.integration
def test_release_changes_latency_and_errors_per_version(analytics):
    """The release shows per version: the new web-api version is slower on one route."""
    rows = expected_rows(analytics["history"], "mart_endpoint_latency_daily")
    versions = {k[3] for k in rows if k[2] == "web-api"}
    assert versions == {"1.4.2", "1.5.0"}
    both_days = {k[0] for k in rows if k[3] == "1.4.2"} & {k[0] for k in rows if k[3] == "1.5.0"}
    assert both_days, "no day with both versions (the canary day)"


@pytest.mark.integration
def test_failures_by_error_type_add_up_to_failed_runs(ch, analytics):
    h = analytics["history"]
    diff = ch.query(
        "SELECT count() FROM (SELECT day, workspace_id, agent_name, failed_runs FROM marts.mart_agent_health_daily "
        "WHERE day BETWEEN {lo:Date} AND {hi:Date} AND workspace_id IN {ws:Array(String)}) AS a "
        "FULL OUTER JOIN (SELECT day, workspace_id, agent_name, sum(failures) AS failed_runs "
        "FROM marts.mart_agent_failures_daily WHERE day BETWEEN {lo:Date} AND {hi:Date} "
        "AND workspace_id IN {ws:Array(String)} GROUP BY day, workspace_id, agent_name) AS f "
        "USING (day, workspace_id, agent_name) WHERE a.failed_runs != f.failed_runs",
        parameters={"lo": h.start, "hi": h.end, "ws": h.workspaces},
    ).result_rows[0][0]
    assert diff == 0
    assert sum(v["timeouts"] for v in expected_rows(h, "mart_agent_health_daily").values()) > 0


@pytest.mark.integration
def test_top_failing_prompt_is_the_refusal_prone_one(analytics):
    """Per agent, the prompt with the most failures over the history is its risky prompt 0."""
    h = analytics["history"]
    rows = expected_rows(h, "mart_prompt_failures_daily")
    for agent in sorted(ha.AGENT_SERVICE):
        hashes = {ha.prompt_hash(agent, i) for i in range(ha.PROMPTS_PER_AGENT)}
        totals = {p: sum(v["failures"] for k, v in rows.items() if k[2] == p) for p in hashes}
        assert max(totals, key=lambda p: totals[p]) == ha.prompt_hash(agent, 0), agent
    assert any(v["top_error_type"] == ha.REFUSAL for v in rows.values())


@pytest.mark.integration
def test_all_workspaces_rows_of_model_drift(ch, analytics):
    """'__all__' rows count every workspace's calls: at least the history's, and the sums of the
    workspace rows of the same day, provider and model."""
    h = analytics["history"]
    rows = ch.query(
        "SELECT a.day, a.provider, a.model, a.calls, a.refusals, w.calls, w.refusals "
        "FROM (SELECT * FROM marts.mart_model_drift_daily WHERE workspace_id = '__all__') AS a "
        "INNER JOIN (SELECT day, provider, model, sum(calls) AS calls, sum(refusals) AS refusals "
        "FROM marts.mart_model_drift_daily WHERE workspace_id != '__all__' GROUP BY day, provider, model) AS w "
        "USING (day, provider, model) WHERE a.day BETWEEN {lo:Date} AND {hi:Date}",
        parameters={"lo": h.start, "hi": h.end},
    ).result_rows
    assert rows and all(r[3:5] == r[5:7] for r in rows)
    record = {k: v for k, v in h.model_drift_daily().items() if k[1] == "__all__"}
    server = {(r[0], "__all__", r[1], r[2]): r[3] for r in rows}
    assert all(server.get(k, 0) >= v["calls"] for k, v in record.items())
    assert sum(v["refusals"] for v in record.values()) > 0


@pytest.mark.integration
def test_spend_spike_is_over_its_guardrail(ch, analytics):
    h = analytics["history"]
    assert h.spike is not None
    day, ws = h.spike
    over, z = ch.query(
        "SELECT over_guardrail, spend_z_score FROM marts.mart_workspace_spend_daily "
        "WHERE day = {d:Date} AND workspace_id = {ws:String}",
        parameters={"d": day, "ws": ws},
    ).result_rows[0]
    assert over is True and z is not None and z > 3
    flagged = [k for k, v in read_mart(ch, "mart_workspace_spend_daily", h).items() if v["over_guardrail"]]
    assert flagged == [(day, ws)]


def _spend_rows(ch, h: ha.AgentHistory) -> list[tuple]:
    return ch.query(
        "SELECT * FROM marts.mart_workspace_spend_daily WHERE day BETWEEN {lo:Date} AND {hi:Date} "
        "AND workspace_id IN {ws:Array(String)} ORDER BY day, workspace_id",
        parameters={"lo": h.start, "hi": h.end, "ws": h.workspaces},
    ).result_rows


@pytest.mark.integration
def test_one_day_build_of_spend_equals_the_full_build(ch, dbt, dbt_window, analytics):
    """A run of one day alone reads its 28 days before from mart_cost_daily: its rows are those
    of the full build, and no other day changes. Days: the spike, and the day after the late
    rows' day (whose baseline holds them)."""
    h = analytics["history"]
    assert h.spike is not None
    full = _spend_rows(ch, h)
    for day in (h.spike[0], h.start + timedelta(days=ha.LATE_OFFSET + 1)):
        assert any(r[0] == day and r[5] >= 7 for r in full)  # baseline_days: a z-score's worth
        dbt("run", "--select", "mart_workspace_spend_daily", vars=dbt_window(day, day))
        one_day = _spend_rows(ch, h)
        built, rebuilt = ([r for r in rows if r[0] == day] for rows in (full, one_day))
        assert len(rebuilt) == len(h.workspaces) and rebuilt == built, f"{rebuilt} != {built}"
        assert one_day == full
