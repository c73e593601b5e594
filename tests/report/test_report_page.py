"""The daily report on the real servers: marts built by dbt for days of this module's own
(today-88 .. today-86, inside the raw tables' 90-day TTL and outside every other test's days),
then the asset writes the page. Nothing is mocked."""

from __future__ import annotations

import base64
import io
import random
import re
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from PIL import Image

from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
from platform_assets.cdc.monitor import wait_caught_up
from platform_assets.cdc.resources import configured_tables
from platform_assets.demo.report import report_summary
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.report.assets import daily_report
from platform_assets.report.charts import PANELS
from platform_assets.report.data import KPIS
from platform_assets.synthetic.history_agents import load_agent_history

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]

TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=88 - i) for i in range(3)]  # today-88 .. today-86
PREVIOUS, DAY = DAYS[0], DAYS[1]  # the report's day has a day of data on either side
EMPTY_DAY = TODAY - timedelta(days=100)  # no test writes or builds it
SEED = 8_886
ARTIFACTS = REPO_ROOT / "test-artifacts" / "report"
ID_BASE = 8_860_000  # order and subscription ids of this module (history_product uses 5_000_000+)
SESSION_PREFIX = "report-test-"
PROPS = '{"path": "/home"}'
# Product activity counts in workspace ws_a, which tests/transform's week (today-70..-64) has on
# every day: its active-user rows for that week then gain no workspace from these users (MAU
# looks back 30 days).
WORKSPACE = "ws_a"
USERS_PER_DAY = {DAYS[0]: 40, DAYS[1]: 50, DAYS[2]: 30}  # users 0..n-1 are active on the day
ORDERS = {DAYS[0]: [1_000, 2_500], DAYS[1]: [4_000, 500, 1_250]}  # cents per order on the day
REFUNDED = ID_BASE + 1  # the 2_500 order of DAYS[0], refunded on DAY
# (mrr cents, started, cancelled): both end inside DAYS, so no later day's MRR changes.
SUBSCRIPTIONS = [(2_900, DAYS[0], DAYS[2]), (9_900, DAYS[0], DAY)]


def at(day: date, seconds: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def res(stack, clickhouse, postgres, kafka, cdc):
    """ClickHouse schema, topics and the CDC replica in place (as tests/transform's platform_ready)."""
    resources = {"clickhouse": clickhouse, "postgres": postgres, "kafka": kafka, "cdc": cdc}
    assets = [kafka_topics, clickhouse_schema, app_schema, source_replication, build_replica_asset(configured_tables())]
    assert materialize(assets, resources=resources, instance=DagsterInstance.ephemeral()).success
    return resources


def product_rows(rng: random.Random) -> list[list]:
    rows = []
    for day, users in USERS_PER_DAY.items():
        for user in range(users):
            for _ in range(rng.randint(1, 3)):
                rows.append(
                    [uuid.UUID(int=rng.getrandbits(128), version=4), "page_view", at(day, rng.randrange(86_400)),
                     WORKSPACE, f"{SESSION_PREFIX}{user}", f"{0xBEEF0000 + user:032x}", "web", "{}", PROPS]
                )  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def built(res, stack, dbt):
    """Raw rows and app rows for DAYS, replicated, then every dbt model built for those days."""
    ch, pg = res["clickhouse"], res["postgres"]
    rng = random.Random(SEED)
    with ch.client() as client:
        client.command(
            f"DELETE FROM raw.product_events WHERE startsWith(session_id, '{SESSION_PREFIX}')",
            settings={"mutations_sync": 2},
        )
        client.insert(
            "raw.product_events",
            product_rows(rng),
            column_names=["event_id", "event_type", "occurred_at", "workspace_id", "session_id", "actor_id",
                          "source", "context", "properties"],
        )  # fmt: skip
    agents = load_agent_history(ch, DAYS[0], len(DAYS), SEED, stack.env()["USER_HASH_KEY"], runs_per_day=25)
    orders = [(day, cents) for day, amounts in ORDERS.items() for cents in amounts]
    with pg.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM orders WHERE order_id >= %s AND order_id < %s", (ID_BASE, ID_BASE + 1000))
        cur.execute("DELETE FROM subscriptions WHERE subscription_id >= %s AND subscription_id < %s",
                    (ID_BASE, ID_BASE + 1000))  # fmt: skip
        cur.executemany(
            "INSERT INTO orders (order_id, user_id, amount_cents, status, created_at, updated_at) "
            "VALUES (%s, %s, %s, 'paid', %s, %s)",
            [(ID_BASE + i, ID_BASE + i, c, at(d, 3600 + i), at(d, 3600 + i)) for i, (d, c) in enumerate(orders)],
        )
        cur.executemany(
            "UPDATE orders SET status = 'refunded', updated_at = %s WHERE order_id = %s",
            [(at(DAY, 7200), REFUNDED)],
        )
        cur.executemany(
            "INSERT INTO subscriptions (subscription_id, user_id, plan, mrr_cents, status, started_at, cancelled_at, "
            "updated_at) VALUES (%s, %s, 'pro', %s, %s, %s, %s, %s)",
            [
                (ID_BASE + i, ID_BASE + i, mrr, "cancelled", at(start, 600), at(end, 900), at(end, 900))
                for i, (mrr, start, end) in enumerate(SUBSCRIPTIONS)
            ],
        )  # fmt: skip
        conn.commit()
    wait_caught_up(pg, ch)
    dbt("build", vars={"min_date": DAYS[0].isoformat(), "max_date": (DAYS[-1] + timedelta(days=1)).isoformat()})
    return agents


def render(res, day, out_dir) -> tuple[str, dict]:
    """Materialize the report for ``day`` into ``out_dir``: its page and its metadata."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPORT_DIR", str(out_dir))
        result = materialize(
            [daily_report], resources={"clickhouse": res["clickhouse"]}, partition_key=day.isoformat(),
            instance=DagsterInstance.ephemeral(),
        )  # fmt: skip
    assert result.success
    (mat,) = result.get_asset_materialization_events()
    md = {k: v.value for k, v in mat.materialization.metadata.items()}
    with open(md["path"], encoding="utf-8") as f:
        return f.read(), md


@pytest.fixture(scope="module")
def report(built, res, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    page, md = render(res, DAY, out)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(md["path"], ARTIFACTS / f"{DAY.isoformat()}.html")  # kept for a look after CI
    return {"page": page, "md": md, "dir": out}


def kpi_values(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-kpi="(\w+)" data-value="([^"]*)"', page))


def test_page_for_a_day_with_data(report):
    md, page = report["md"], report["page"]
    assert md["path"] == str(report["dir"] / DAY.isoformat() / "index.html")
    assert md["url"] == f"file://{md['path']}"
    assert md["has_data"] is True and md["charts"] == len(PANELS) == 6
    assert f"Platform daily report: {DAY.isoformat()}" in page and 'id="no-data"' not in page
    assert set(kpi_values(page)) == set(KPIS)
    assert page.count("<figure data-chart=") == md["charts"]
    assert 'src="data:image/png;base64,' in page and "http://" not in page and "https://" not in page  # self-contained


def test_charts_are_valid_png_images(report):
    images = re.findall(r'data-chart="(\w+)".*?src="data:image/png;base64,([^"]+)"', report["page"])
    assert len(images) == 6
    for name, b64 in images:
        raw = base64.b64decode(b64)
        assert len(raw) > 10_000, name  # a drawn chart, not an empty canvas
        with Image.open(io.BytesIO(raw)) as img:
            img.verify()
        with Image.open(io.BytesIO(raw)) as img:
            assert img.format == "PNG" and img.width >= 600 and img.height >= 250, (name, img.size)
            assert len(img.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20, name


def mart_figures(clickhouse, day: date) -> dict[str, float | int | None]:
    """The headline figures, computed here from the marts with queries of the test's own."""
    one = {"d": day}

    def q(sql: str) -> tuple:
        with clickhouse.client() as c:
            rows = c.query(sql, parameters=one).result_rows
        return rows[0] if rows else (None,) * 10

    dau, wau, mau = q("SELECT dau, wau, mau FROM marts.mart_active_users_daily WHERE day = {d:Date} "
                      "AND workspace_id = '__all__'")  # fmt: skip
    calls, cost = q("SELECT sum(calls), sum(cost_usd) FROM marts.mart_llm_daily WHERE day = {d:Date}")
    spans, es, traces, et = q("SELECT sum(spans), sum(error_spans), sum(traces), sum(error_traces) "
                              "FROM marts.mart_trace_errors_daily WHERE day = {d:Date}")  # fmt: skip
    runs, errors = q("SELECT sum(requests), sum(errors) FROM marts.mart_slo_daily WHERE day = {d:Date}")
    tools, ok = q("SELECT sum(calls), sum(successes) FROM marts.mart_tool_reliability_hourly "
                  "WHERE toDate(hour) = {d:Date}")  # fmt: skip
    orders, net = q("SELECT orders, net_revenue_usd FROM marts.mart_orders_daily WHERE day = {d:Date}")
    mrr, subs = q("SELECT mrr_usd, active_subscriptions FROM marts.mart_mrr_daily WHERE day = {d:Date}")
    return {
        "dau": dau, "wau": wau, "mau": mau, "llm_calls": calls, "llm_cost_usd": cost,
        "call_error_rate": es / spans, "trace_error_rate": et / traces, "agent_runs": runs,
        "agent_run_success_rate": 1 - errors / runs, "tool_calls": tools, "tool_success_rate": ok / tools,
        "orders": orders, "net_revenue_usd": float(net), "mrr_usd": float(mrr), "active_subscriptions": subs,
    }  # fmt: skip


def test_kpis_in_the_page_equal_the_marts(report, res, built):
    got = {k: float(v) for k, v in kpi_values(report["page"]).items()}
    want = mart_figures(res["clickhouse"], DAY)
    assert got == pytest.approx({k: float(v) for k, v in want.items()}, rel=1e-9)
    # ... and the marts hold what this module sent.
    assert (want["dau"], want["wau"], want["mau"]) == (50, 50, 50)
    assert want["orders"] == 3 and want["net_revenue_usd"] == pytest.approx((4_000 + 500 + 1_250 - 2_500) / 100)
    assert (want["mrr_usd"], want["active_subscriptions"]) == (pytest.approx(29.0), 1)
    llm_calls = sum(v["calls"] for (d, *_), v in built.llm_daily().items() if d == DAY)
    assert want["llm_calls"] == llm_calls > 0
    # The change from the day before: DAU 40 -> 50.
    assert "+10 (+25.0%) vs previous day" in report["page"]
    assert report["md"]["kpi/dau"] == 50 and report["md"]["kpi/orders"] == 3


def test_day_without_data_renders_the_no_data_page(res, built, tmp_path):
    page, md = render(res, EMPTY_DAY, tmp_path)
    assert md["has_data"] is False and md["charts"] == 0
    assert not any(k.startswith("kpi/") and v not in (0, 0.0) for k, v in md.items())
    assert 'id="no-data"' in page and f"No data for {EMPTY_DAY.isoformat()}" in page
    assert "<img" not in page
    assert (tmp_path / EMPTY_DAY.isoformat() / "index.html").is_file()


def test_report_summary_for_the_demo(res, built, tmp_path):
    summary = report_summary(res["clickhouse"], DAY, root=tmp_path)
    assert summary["has_data"] is True and summary["kpis"]["dau"] == 50 and len(summary["charts"]) == 6
    assert summary["path"] == str(tmp_path / DAY.isoformat() / "index.html") and summary["url"].startswith("file://")
