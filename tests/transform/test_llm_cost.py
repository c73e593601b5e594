"""LLM call cost from a versioned price table or the span's own reported cost, on the real stack.

Deterministic spans go straight into raw.spans on three old days of this module's own
workspace (no other test writes or asserts on them). A model of this module's own gets two
price rows in the seed's table (the seed's file is shared: the rows are added to the built
table and the seed is rebuilt afterwards), one on the second day and one on the third, so the
first day is before its first row. Staging (stg_kafka__spans) and the call-metric marts are
built by dbt for the three days and compared with what this module computes in Python.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from platform_assets.synthetic.prices import price_on
from platform_assets.synthetic.raw_columns import SPAN_COLUMNS

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
D0, D1, D2 = (TODAY - timedelta(days=n) for n in (58, 57, 56))  # between other modules' days; raw TTL 90 days
WS = f"ws_llm_cost_{uuid.uuid4().hex[:8]}"
TEST_MODEL = f"llm-cost-test-{uuid.uuid4().hex[:6]}"  # priced only by the rows this module adds
UNKNOWN_MODEL = "no-such-model-in-any-price-table"
SEED_MODEL = "gpt-4o"  # priced by the seed's own rows
# (model, effective_from, USD per input, per cached input, per output token)
TEST_PRICES = [
    (TEST_MODEL, D1, 1e-6, 2.5e-7, 4e-6),
    (TEST_MODEL, D2, 2e-6, 5e-7, 8e-6),  # the price doubles on the third day
]
REPORTED = "0.0123456789"  # a cost as an instrumentation sends it (text in the attribute map)
MODELS = ["stg_kafka__spans", "mart_agent_metrics_1m", "mart_agent_metrics_1h"]
TABLES = {"raw.spans": "tenant", "staging.stg_kafka__spans": "workspace_id"} | {
    f"marts.{m}": "workspace_id" for m in MODELS[1:]
}


@dataclass
class Call:
    """One span and what staging must make of it."""

    day: date
    minute: int  # minute of 10:00 UTC on its day
    model: str
    attributes: dict[str, str]
    resource: dict[str, str] = field(default_factory=dict)
    status_code: int = 0
    span_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    # expected
    source: str = ""
    cost: float = 0.0
    price_from: date | None = None
    cached: int = 0
    reasoning: int = 0
    error: bool = False

    @property
    def start(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, 10, self.minute, 7, tzinfo=UTC)

    def tokens(self) -> tuple[int, int]:
        a = self.attributes
        return int(a.get("gen_ai.usage.input_tokens", 0)), int(a.get("gen_ai.usage.output_tokens", 0))


def priced(tin: int, tout: int, cached: int, pin: float, pcached: float, pout: float) -> float:
    """(input - cached) x input + cached x cached-input + output x output; cache reads are part of input."""
    c = min(cached, tin)
    return (tin - c) * pin + c * pcached + tout * pout


def chat(model: str, tin: int, tout: int, **extra: str) -> dict[str, str]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": str(tin),
        "gen_ai.usage.output_tokens": str(tout),
        **extra,
    }


def build_calls() -> list[Call]:
    p1, p2 = ({"pin": p[2], "pcached": p[3], "pout": p[4]} for p in TEST_PRICES)
    seed = price_on(SEED_MODEL, D2)
    assert seed is not None
    return [
        # before the model's first price row: unpriced, cost 0
        Call(D0, 0, TEST_MODEL, chat(TEST_MODEL, 1000, 100), source="unpriced"),
        # the first row; cached and reasoning tokens under the convention names and under aliases
        Call(
            D1, 0, TEST_MODEL,
            chat(TEST_MODEL, 1000, 200, **{"gen_ai.usage.cache_read.input_tokens": "400",
                                           "gen_ai.usage.reasoning.output_tokens": "50"}),
            source="price_table", cost=priced(1000, 200, 400, **p1), price_from=D1, cached=400, reasoning=50,
        ),
        Call(
            D1, 1, TEST_MODEL, chat(TEST_MODEL, 500, 50, cached_tokens="100", reasoning_tokens="20"),
            source="price_table", cost=priced(500, 50, 100, **p1), price_from=D1, cached=100, reasoning=20,
        ),
        # status unset, the error told by a `status` or `error` attribute; an OK status stays OK
        Call(
            D1, 2, TEST_MODEL, chat(TEST_MODEL, 10, 1, status="error"),
            source="price_table", cost=priced(10, 1, 0, **p1), price_from=D1, error=True,
        ),
        Call(
            D1, 3, TEST_MODEL, chat(TEST_MODEL, 10, 1, error="true"),
            source="price_table", cost=priced(10, 1, 0, **p1), price_from=D1, error=True,
        ),
        Call(
            D1, 4, TEST_MODEL, chat(TEST_MODEL, 10, 1, error="true"), status_code=1,
            source="price_table", cost=priced(10, 1, 0, **p1), price_from=D1,
        ),
        # the same tokens one day later: the second row's prices
        Call(
            D2, 0, TEST_MODEL,
            chat(TEST_MODEL, 1000, 200, **{"gen_ai.usage.cache_read.input_tokens": "400",
                                           "gen_ai.usage.reasoning.output_tokens": "50"}),
            source="price_table", cost=priced(1000, 200, 400, **p2), price_from=D2, cached=400, reasoning=50,
        ),
        # more cache reads than input tokens: at most every input token is priced as cached
        Call(
            D2, 1, TEST_MODEL, chat(TEST_MODEL, 100, 10, **{"llm.usage.cache_read_input_tokens": "300"}),
            source="price_table", cost=priced(100, 10, 300, **p2), price_from=D2, cached=300,
        ),
        # a reported cost wins over the price table, kept as sent (span, else resource attribute)
        Call(
            D2, 2, TEST_MODEL, chat(TEST_MODEL, 1000, 200, **{"gen_ai.usage.cost": REPORTED}),
            source="reported", cost=float(REPORTED),
        ),
        Call(
            D2, 3, TEST_MODEL, chat(TEST_MODEL, 1000, 200), resource={"llm.usage.cost": "0.25"},
            source="reported", cost=0.25,
        ),
        # a cost that is no number: not reported, priced from the table
        Call(
            D2, 4, TEST_MODEL, chat(TEST_MODEL, 1000, 200, cost_usd="n/a"),
            source="price_table", cost=priced(1000, 200, 0, **p2), price_from=D2,
        ),
        # a model without any price row
        Call(D2, 5, UNKNOWN_MODEL, chat(UNKNOWN_MODEL, 700, 70), source="unpriced"),
        # a model of the seed itself, with cache reads at the seed's cached-input price
        Call(
            D2, 6, SEED_MODEL, chat(SEED_MODEL, 2000, 300, **{"gen_ai.usage.cache_read_input_tokens": "1500"}),
            source="price_table", price_from=seed.effective_from, cached=1500,
            cost=priced(2000, 300, 1500, seed.usd_per_input_token, seed.usd_per_cached_input_token,
                        seed.usd_per_output_token),
        ),
    ]  # fmt: skip


CALLS = build_calls()
TRACE_ID = uuid.uuid4().hex
TOOL_SPAN = uuid.uuid4().hex[:16]  # not an LLM call and no cost: cost_source ''


def span_rows() -> list[list[Any]]:
    rows = []
    for i, c in enumerate(CALLS):
        rows.append([
            TRACE_ID, c.span_id, "", WS, "llm-cost-test", "cost-svc", "test_llm_cost", f"chat {c.model}", 3,
            c.status_code, "", c.start, c.start + timedelta(milliseconds=100 + i), float(100 + i), c.attributes,
            {"service.name": "cost-svc", "tenant.id": WS, **c.resource}, 0, i,
        ])  # fmt: skip
    at = datetime(D2.year, D2.month, D2.day, 10, 30, tzinfo=UTC)
    rows.append([
        TRACE_ID, TOOL_SPAN, "", WS, "llm-cost-test", "cost-svc", "test_llm_cost", "execute_tool search", 1, 0, "",
        at, at + timedelta(milliseconds=5), 5.0,
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
        {"service.name": "cost-svc", "tenant.id": WS}, 0, len(CALLS),
    ])  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def ch(platform_ready, clickhouse) -> Iterator[Any]:
    with clickhouse.client() as client:
        yield client


def window() -> dict[str, str]:
    return {"min_date": D0.isoformat(), "max_date": (D2 + timedelta(days=1)).isoformat()}


def add_test_prices(ch: Any, rows: list[tuple]) -> None:
    cols = [
        "model",
        "provider",
        "effective_from",
        "usd_per_input_token",
        "usd_per_cached_input_token",
        "usd_per_output_token",
    ]
    ch.insert("staging.model_prices", [[m, "test", d, a, b, c] for m, d, a, b, c in rows], column_names=cols)


@pytest.fixture(scope="module")
def built(ch, dbt) -> Iterator[None]:
    ch.insert("raw.spans", span_rows(), column_names=SPAN_COLUMNS)
    dbt("seed", "--select", "model_prices")
    add_test_prices(ch, TEST_PRICES)
    try:
        # the seed is not selected: the models read the table with this module's rows in it
        dbt("build", "--select", *MODELS, vars=window())
        yield
    finally:
        dbt("seed", "--select", "model_prices")  # back to the file's rows
        for table, col in TABLES.items():
            if ch.command(f"EXISTS TABLE {table}"):
                ch.command(f"ALTER TABLE {table} DELETE WHERE {col} = '{WS}' SETTINGS mutations_sync = 2")


def staged(ch: Any) -> dict[str, tuple]:
    rows = ch.query(
        "SELECT span_id, cost_source, cost_usd, price_effective_from, cached_input_tokens, reasoning_tokens, "
        "is_error, is_llm_call FROM staging.stg_kafka__spans WHERE workspace_id = {ws:String}",
        {"ws": WS},
    ).result_rows
    return {r[0]: tuple(r[1:]) for r in rows}


def test_each_span_gets_its_source_price_row_and_cost(ch, built):
    got = staged(ch)
    assert len(got) == len(CALLS) + 1
    for c in CALLS:
        source, cost, price_from, cached, reasoning, is_error, is_llm_call = got[c.span_id]
        assert (source, price_from, cached, reasoning, is_error, is_llm_call) == (
            c.source, c.price_from, c.cached, c.reasoning, c.error, True
        ), (c.day, c.minute, c.model)  # fmt: skip
        assert cost == pytest.approx(c.cost, rel=1e-12, abs=0), (c.day, c.minute, c.model)
    assert got[TOOL_SPAN] == ("", 0.0, None, 0, 0, False, False)


def test_a_price_change_between_two_days_prices_each_day_with_its_own_row(ch, built):
    same_tokens = [c for c in CALLS if c.minute == 0 and c.model == TEST_MODEL]
    assert [c.day for c in same_tokens] == [D0, D1, D2]
    got = staged(ch)
    costs = [got[c.span_id][1] for c in same_tokens]
    assert [got[c.span_id][0] for c in same_tokens] == ["unpriced", "price_table", "price_table"]
    assert costs[0] == 0 and costs[1] > 0
    assert costs[2] == pytest.approx(2 * costs[1], rel=1e-12)  # every price doubled on D2


def test_a_reported_cost_is_kept_exactly(ch, built):
    got = staged(ch)
    reported = [c for c in CALLS if c.source == "reported"]
    assert [got[c.span_id][1] for c in reported] == [float(REPORTED), 0.25]  # bit for bit


def expected_metrics(bucket: str) -> dict[tuple, dict[str, Any]]:
    """(bucket start, model) -> the call-metric mart's cost and token figures for this module's spans."""
    out: dict[tuple, dict[str, Any]] = defaultdict(
        lambda: dict.fromkeys(
            ("calls", "errors", "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens",
             "reported_calls", "unpriced_calls", "cost_usd", "reported_cost_usd", "priced_cost_usd"), 0
        )
    )  # fmt: skip
    for c in CALLS:
        start = c.start.replace(second=0, tzinfo=None)
        if bucket == "hour":
            start = start.replace(minute=0)
        row = out[(start, c.model)]
        tin, tout = c.tokens()
        row["calls"] += 1
        row["errors"] += c.error
        row["input_tokens"] += tin
        row["output_tokens"] += tout
        row["cached_input_tokens"] += c.cached
        row["reasoning_tokens"] += c.reasoning
        row["reported_calls"] += c.source == "reported"
        row["unpriced_calls"] += c.source == "unpriced"
        row["cost_usd"] += c.cost
        row["reported_cost_usd"] += c.cost if c.source == "reported" else 0.0
        row["priced_cost_usd"] += c.cost if c.source == "price_table" else 0.0
    return dict(out)


@pytest.mark.parametrize(("mart", "bucket"), [("mart_agent_metrics_1m", "minute"), ("mart_agent_metrics_1h", "hour")])
def test_marts_sum_tokens_and_cost_by_source(ch, built, mart, bucket):
    expected = expected_metrics(bucket)
    cols = list(next(iter(expected.values())))
    rows = ch.query(
        f"SELECT {bucket}, model, {', '.join(cols)} FROM marts.{mart} WHERE workspace_id = {{ws:String}}",
        {"ws": WS},
    ).result_rows
    got = {(r[0].replace(tzinfo=None), r[1]): dict(zip(cols, r[2:], strict=True)) for r in rows}
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        for col, value in want.items():
            if isinstance(value, float):
                assert got[key][col] == pytest.approx(value, rel=1e-12, abs=1e-18), (mart, key, col)
            else:
                assert got[key][col] == value, (mart, key, col)


def test_the_seed_tests_fail_on_a_second_row_for_a_model_and_day(ch, built, dbt):
    assert dbt("test", "--select", "model_prices").returncode == 0
    add_test_prices(ch, [TEST_PRICES[0]])
    try:
        failed = dbt("test", "--select", "model_prices", check=False)
        assert failed.returncode != 0
        assert "model_prices_one_row_per_model_and_day" in failed.stdout, failed.stdout[-3000:]
    finally:
        dbt("seed", "--select", "model_prices")
