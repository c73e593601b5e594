"""The Superset dashboards in a real browser: Apache Superset (started once for this module in the
session stack's directory) with the bundle imported by the ``publish/superset_dashboards`` asset,
headless Chromium driven by Playwright (Debian's /usr/bin/chromium, never a downloaded one).

Data: the transform tests' history, identical rows (tests/transform: the product history of
SEED 20_240_611 and the agent history of seed 20261 over the 35 days ending two days ago), and a
dbt build of the charted marts for that window. The test logs in through the login form, opens
each dashboard, waits until every chart's data request has answered and nothing is loading, and
checks that no chart shows an error, every chart got rows, the per-day table shows the mart's
value for a known day read from ClickHouse, and a table over a new mart (paths, failing prompts)
leads with the mart's largest figure. Screenshots go to test-artifacts/superset/."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from dagster import DagsterInstance, materialize
from playwright.sync_api import Page, Response, sync_playwright

from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
from platform_assets.cdc.monitor import wait_caught_up
from platform_assets.cdc.resources import configured_tables
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.publish.resources import SupersetResource
from platform_assets.publish.superset_assets import superset_dashboards
from platform_assets.publish.superset_specs import AGENTS, PRODUCT, SupersetDashboard
from platform_assets.stack.servers.superset import SupersetServer, superset_venv
from platform_assets.synthetic.history_agents import load_agent_history
from platform_assets.synthetic.history_product import load_product_history

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "superset"
CHROMIUM = "/usr/bin/chromium"  # Debian's build (scripts/setup.sh); Playwright never downloads one
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]
PAGE_TIMEOUT_MS = 30_000
DASHBOARD_TIMEOUT_S = 180  # every chart's query on a busy 2-core runner
ANIMATION_MS = 2_000  # ECharts draws lines and bars in ~1 s after the data arrives

# The transform tests' window and seeds (tests/transform/conftest.py, test_product_marts.py,
# test_agent_marts.py): the same rows, so loading them again changes nothing those tests assert.
HISTORY_DAYS = 35
HISTORY_END = datetime.now(UTC).date() - timedelta(days=2)
HISTORY_START = HISTORY_END - timedelta(days=HISTORY_DAYS - 1)
PRODUCT_SEED = 20_240_611
AGENT_SEED = 20261
# Every mart a chart reads (superset_specs), built with what it reads.
MODELS = sorted(
    {c.dataset.split(".", 1)[1] for d in (PRODUCT, AGENTS) for c in d.charts if c.dataset.startswith("marts.")}
)

# Per dashboard: its per-day table chart, the column checked, and the SQL of that column's value
# for one day (the mart, summed over its other keys like the chart's metric).
KNOWN = {
    PRODUCT.slug: ("Orders per day", "orders", "SELECT sum(orders) FROM marts.mart_orders_daily WHERE day = {d:Date}"),
    AGENTS.slug: (
        "LLM calls, tokens and cost per day",
        "LLM calls",
        "SELECT sum(calls) FROM marts.mart_llm_daily WHERE day = {d:Date}",
    ),
}
# Per dashboard: a table chart over a new mart (no time filter: every row of the mart), its first
# column shown, and the SQL of the largest value of it (the table is sorted by it, descending).
TOP = {
    PRODUCT.slug: (
        "Page transitions",
        "transitions",
        "SELECT max(n) FROM (SELECT sum(transitions) AS n FROM marts.mart_paths_daily GROUP BY step, next_step)",
    ),
    AGENTS.slug: (
        "Prompts with the most failures",
        "failures",
        "SELECT max(n) FROM (SELECT sum(failures) AS n FROM marts.mart_prompt_failures_daily GROUP BY prompt_hash)",
    ),
}
KNOWN_DAY_SQL = {
    PRODUCT.slug: "SELECT day FROM marts.mart_orders_daily WHERE day BETWEEN {lo:Date} AND {hi:Date} "
    "ORDER BY orders DESC, day DESC LIMIT 1",
    AGENTS.slug: "SELECT day FROM marts.mart_llm_daily WHERE day BETWEEN {lo:Date} AND {hi:Date} "
    "GROUP BY day ORDER BY sum(calls) DESC, day DESC LIMIT 1",
}


@pytest.fixture(scope="module")
def marts(stack, clickhouse, postgres, kafka, cdc, dbt) -> None:
    """Schema, topics and CDC replica; both histories; a dbt build of the charted marts."""
    res = {"clickhouse": clickhouse, "postgres": postgres, "kafka": kafka, "cdc": cdc}
    assets = [kafka_topics, clickhouse_schema, app_schema, source_replication, build_replica_asset(configured_tables())]
    assert materialize(assets, resources=res, instance=DagsterInstance.ephemeral()).success
    key = os.environ["USER_HASH_KEY"]
    load_product_history(clickhouse, postgres, HISTORY_START, HISTORY_DAYS, PRODUCT_SEED, key)
    wait_caught_up(postgres, clickhouse, cdc.replica_database, 60.0)
    # Without its late rows: tests/transform/test_agent_analytics_marts.py builds first without them
    # (the loader appends, so rows written here stay), then writes them itself.
    load_agent_history(clickhouse, HISTORY_START, HISTORY_DAYS, AGENT_SEED, key, hold_late=True)
    window = {"min_date": HISTORY_START.isoformat(), "max_date": (HISTORY_END + timedelta(days=1)).isoformat()}
    dbt("build", "--select", *(f"+{m}" for m in MODELS), vars=window)


@pytest.fixture(scope="module")
def superset(stack, marts, clickhouse) -> Iterator[SupersetResource]:
    """Superset in the session stack's directory with the bundle imported by the asset."""
    if not (superset_venv() / "bin" / "superset").exists():
        pytest.skip(f"Apache Superset is not installed in {superset_venv()}: run scripts/setup.sh")
    server = SupersetServer(stack.cfg)
    server.up()
    try:
        env = {**stack.env(), **server.env()}
        resource = SupersetResource(
            url=env["SUPERSET_URL"],
            username=env["SUPERSET_USERNAME"],
            password=env["SUPERSET_PASSWORD"],
            clickhouse_password=env["CLICKHOUSE_SUPERSET_PASSWORD"],
        )
        result = materialize(
            [superset_dashboards],
            resources={"superset": resource, "clickhouse": clickhouse},
            instance=DagsterInstance.ephemeral(),
        )
        assert result.success
        yield resource
    finally:
        server.down()


def known_value(clickhouse, slug: str) -> tuple[date, int]:
    with clickhouse.client() as ch:
        day = ch.query(KNOWN_DAY_SQL[slug], parameters={"lo": HISTORY_START, "hi": HISTORY_END}).result_rows[0][0]
        value = ch.query(KNOWN[slug][2], parameters={"d": day}).result_rows[0][0]
    assert value > 0, (slug, day)
    return day, int(value)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, timeout=PAGE_TIMEOUT_MS)


def log_in(page: Page, superset: SupersetResource) -> None:
    page.goto(f"{superset.url}/login/", wait_until="domcontentloaded")
    page.locator('[data-test="username-input"]').fill(superset.username or "")
    page.locator('[data-test="password-input"]').fill(superset.password or "")
    shot(page, "01-login")
    page.locator('[data-test="login-button"]').click()
    page.wait_for_url(lambda url: "/login" not in url, timeout=PAGE_TIMEOUT_MS)


class ChartData:
    """The chart data answers (POST /api/v1/chart/data) the page received, by chart id. The handler
    only records them (Playwright's sync API cannot be called from an event handler); ``bodies``
    reads them afterwards."""

    def __init__(self) -> None:
        self.answers: dict[int, list[Response]] = {}

    def on_response(self, resp: Response) -> None:
        if "/api/v1/chart/data" not in resp.url or resp.request.method != "POST":
            return
        # The dashboard names the chart in the URL (?form_data={"slice_id": N}).
        query = parse_qs(urlparse(resp.url).query).get("form_data") or ["{}"]
        chart_id = int(json.loads(query[0]).get("slice_id") or 0)
        self.answers.setdefault(chart_id, []).append(resp)

    def bodies(self, chart_id: int) -> list[dict[str, Any]]:
        out = []
        for resp in self.answers[chart_id]:
            try:
                body = resp.json()
            except ValueError as exc:  # a non-JSON answer is itself the failure to report
                body = {"error": f"{type(exc).__name__}: {resp.text()[:300]}"}
            out.append({"status": resp.status, "body": body})
        return out


def wait_dashboard(page: Page, data: ChartData, chart_ids: set[int]) -> None:
    """Until every chart has a data answer and no chart shows a loading indicator."""
    holders = page.locator('[data-test="dashboard-component-chart-holder"]')
    deadline = time.monotonic() + DASHBOARD_TIMEOUT_S
    while time.monotonic() < deadline:
        answered = chart_ids <= set(data.answers)
        loading = page.locator('[data-test="dashboard-component-chart-holder"] [data-test="loading-indicator"]')
        if answered and holders.count() == len(chart_ids) and loading.count() == 0:
            return
        page.wait_for_timeout(500)  # lets Playwright deliver the responses meanwhile
    raise AssertionError(
        f"charts without an answer: {sorted(chart_ids - set(data.answers))} (answered: {sorted(data.answers)}); "
        f"see {ARTIFACTS}"
    )


def table_rows(page: Page, chart_title: str) -> list[list[str]]:
    holder = page.locator('[data-test="dashboard-component-chart-holder"]').filter(has_text=chart_title)
    header = [h.strip() for h in holder.locator("thead th").all_inner_texts()]
    rows = [[c.strip() for c in row.locator("td").all_inner_texts()] for row in holder.locator("tbody tr").all()]
    return [header, *rows]


def check_dashboard(page: Page, superset: SupersetResource, dash: SupersetDashboard, clickhouse) -> dict[str, Any]:
    with superset.client() as api:
        charts = {c["slice_name"]: c["id"] for c in api.dashboard_charts(dash.slug)}
    assert set(charts) == {c.title for c in dash.charts}
    data = ChartData()
    page.on("response", data.on_response)
    try:
        page.goto(f"{superset.url}/superset/dashboard/{dash.slug}/", wait_until="domcontentloaded")
        page.get_by_text(dash.title, exact=True).first.wait_for(timeout=PAGE_TIMEOUT_MS)
        try:
            wait_dashboard(page, data, set(charts.values()))
            page.wait_for_timeout(ANIMATION_MS)  # for the screenshot only: the charts' draw animation
        finally:
            shot(page, f"dashboard-{dash.slug}")
    finally:
        page.remove_listener("response", data.on_response)

    # No chart shows an error, and every chart's query returned rows.
    problems = []
    for title, chart_id in charts.items():
        for answer in data.bodies(chart_id):
            results = answer["body"].get("result") or []
            if answer["status"] != 200 or not results or any(r.get("error") for r in results):
                problems.append((title, answer["status"], str(answer["body"])[:500]))
            elif not all(r["rowcount"] > 0 and r["data"] for r in results):
                problems.append((title, "no rows", [r["rowcount"] for r in results]))
    assert not problems, problems
    errors = page.locator(
        '[data-test="dashboard-component-chart-holder"] :is([data-test="error-tooltip"], .ant-alert-error, '
        '[data-test="empty-state"])'
    )
    assert errors.count() == 0, errors.all_inner_texts()
    texts = page.locator('[data-test="dashboard-component-chart-holder"]').all_inner_texts()
    assert not [t for t in texts if re.search(r"No results|Unexpected error|error occurred", t)], texts

    # The per-day table shows the mart's value for a known day.
    title, column, _ = KNOWN[dash.slug]
    day, value = known_value(clickhouse, dash.slug)
    header, *rows = table_rows(page, title)
    col = header.index(column)
    (row,) = [r for r in rows if r and r[0].startswith(day.isoformat())]
    assert int(row[col].replace(",", "")) == value, (day, row, value)

    # The table over a new mart leads with the mart's largest figure.
    title, column, sql = TOP[dash.slug]
    header, *rows = table_rows(page, title)
    with clickhouse.client() as ch:
        top = int(ch.query(sql).result_rows[0][0])
    assert rows and int(rows[0][header.index(column)].replace(",", "")) == top > 0, (title, rows[:3], top)
    return {"day": day, "value": value, "charts": len(charts)}


@pytest.mark.timeout(1500)  # histories + dbt build + Superset's first start + two dashboards
def test_the_dashboards_render_every_chart_with_the_marts_values(superset, clickhouse):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2200})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            log_in(page, superset)
            shot(page, "02-logged-in")
            for dash in (PRODUCT, AGENTS):
                seen[dash.slug] = check_dashboard(page, superset, dash, clickhouse)
        finally:
            browser.close()
    assert set(seen) == {PRODUCT.slug, AGENTS.slug}
