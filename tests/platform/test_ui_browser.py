"""The Dagster UI end to end in a real browser: `dagster dev` (webserver + daemon) against the
session stack, headless Chromium driven by Playwright. From the asset graph to a mart, one
day's partition launched from the launch dialog, the run followed to SUCCESS, the mart's rows
checked in ClickHouse. Screenshots of every step go to test-artifacts/ui/."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance, materialize
from playwright.sync_api import Page, expect, sync_playwright

from platform_assets.cdc.assets import app_schema, build_replica_asset, source_replication
from platform_assets.cdc.resources import configured_tables
from platform_assets.ingest.assets import kafka_topics
from platform_assets.ops.assets import clickhouse_schema
from platform_assets.stack.process import free_port, stop_pid
from platform_assets.synthetic.raw_columns import LLM_CALL_FIELDS

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]

CHROMIUM = "/usr/bin/chromium"  # Debian's build (scripts/setup.sh); Playwright never downloads one
# Root in CI containers needs --no-sandbox; /dev/shm is small in containers.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
DAY = datetime.now(UTC).date() - timedelta(days=89)  # this module's own day (raw TTL: 90 days)
WORKSPACE = "ws_ui_browser"
CALLS = 60
MART = "marts/mart_llm_daily"
LOAD_TIMEOUT_S = 240  # the code location loads the dbt manifest; slow on a busy 2-core runner
RUN_TIMEOUT_S = 300  # queued, picked up by the daemon, then one dbt build of two models
UI_TIMEOUT_MS = 30_000  # any single page action


def gql(url: str, query: str, **variables) -> dict:
    resp = requests.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=15)
    resp.raise_for_status()
    body = resp.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def raw_day(stack, clickhouse, postgres, kafka, cdc) -> int:
    """Schema, topics and CDC replica in place (as tests/transform's platform_ready), then llm_call
    events for DAY in the raw table, as the Kafka path lands them."""
    res = {"clickhouse": clickhouse, "postgres": postgres, "kafka": kafka, "cdc": cdc}
    assets = [kafka_topics, clickhouse_schema, app_schema, source_replication, build_replica_asset(configured_tables())]
    assert materialize(assets, resources=res, instance=DagsterInstance.ephemeral()).success
    rng = random.Random(89)
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    rows = [
        [uuid.UUID(int=rng.getrandbits(128), version=4), "llm_call", start + timedelta(seconds=rng.randrange(86_400)),
         WORKSPACE, "s-ui", f"{rng.randrange(10):032x}", "sdk", "{}", "gpt-4o-mini", "openai",
         rng.randrange(100, 900), rng.randrange(10, 200), float(rng.randrange(80, 2_000)), 1, 0.0005]
        for _ in range(CALLS)
    ]  # fmt: skip
    with clickhouse.client() as ch:
        ch.command(f"DELETE FROM raw.agent_events WHERE workspace_id = '{WORKSPACE}'", settings={"mutations_sync": 2})
        ch.insert("raw.agent_events", rows, column_names=LLM_CALL_FIELDS)
    return CALLS


LOCATION = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def wait_location_loaded(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dagster dev exited ({proc.returncode}); see {ARTIFACTS / 'dagster-dev.log'}"
        try:
            entries = gql(url, LOCATION)["workspaceOrError"]["locationEntries"]
            last = entries
            if entries and entries[0]["loadStatus"] == "LOADED":
                assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
                return
        except (requests.RequestException, KeyError, ValueError, TypeError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"code location not loaded in {LOAD_TIMEOUT_S} s: {last}")


INSTIGATORS = """query($r: RepositorySelector!) {
  schedulesOrError(repositorySelector: $r) { ... on Schedules { results { name scheduleState { id status } } } }
  sensorsOrError(repositorySelector: $r) { ... on Sensors { results { name sensorState { id status } } } } }"""
STOP_SCHEDULE = """mutation($id: String!) { stopRunningSchedule(id: $id) {
  __typename ... on ScheduleStateResult { scheduleState { status } } } }"""
STOP_SENSOR = """mutation($id: String!) { stopSensor(id: $id) {
  __typename ... on StopSensorMutationResult { instigationState { status } } } }"""


def stop_schedules_and_sensors(url: str) -> None:
    """Only the run this test launches: no 5-minute dbt run to queue behind (one dbt run at a
    time) and nothing written to today's partitions of the shared stack."""
    repo = {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__"}
    data = gql(url, INSTIGATORS, r=repo)
    for schedule in data["schedulesOrError"]["results"]:
        if schedule["scheduleState"]["status"] == "RUNNING":
            out = gql(url, STOP_SCHEDULE, id=schedule["scheduleState"]["id"])["stopRunningSchedule"]
            assert out["scheduleState"]["status"] == "STOPPED", (schedule["name"], out)
    for sensor in data["sensorsOrError"]["results"]:
        if sensor["sensorState"]["status"] == "RUNNING":
            out = gql(url, STOP_SENSOR, id=sensor["sensorState"]["id"])["stopSensor"]
            assert out["instigationState"]["status"] == "STOPPED", (sensor["name"], out)


NUX_SEEN = "mutation { setNuxSeen }"
SHOULD_SHOW_NUX = "{ shouldShowNux }"


def dismiss_community_dialog(url: str) -> None:
    """The UI on localhost opens a newsletter dialog over the page on a fresh instance; it can
    cover the launch dialog mid-click. Mark it seen on the instance, as its Skip button does."""
    gql(url, NUX_SEEN)
    assert gql(url, SHOULD_SHOW_NUX)["shouldShowNux"] is False


@pytest.fixture(scope="module")
def dagster_ui(stack, tmp_path_factory) -> Iterator[str]:
    """`dagster dev` (webserver, daemon, code server) on a free port; its process group is
    stopped at the end. Logs: test-artifacts/ui/dagster-dev.log."""
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    with open(ARTIFACTS / "dagster-dev.log", "wb") as log:
        proc = subprocess.Popen(
            [dagster, "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")},
                "DAGSTER_HOME": str(home),
                "PLATFORM_STACK_DIR": str(stack.cfg.root),
            },
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon, code server, run workers
            # Ctrl-C stops it cleanly; a parent started in the background may pass SIGINT on as ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_location_loaded(url, proc)
            stop_schedules_and_sensors(url)
            dismiss_community_dialog(url)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGINT)  # dagster dev shuts its services down on Ctrl-C
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            stop_pid(proc.pid, timeout=10)  # whatever is left of the group: SIGTERM, then SIGKILL


def shot(page: Page, step: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{step}.png"), full_page=False, timeout=UI_TIMEOUT_MS)


def goto_until(page: Page, url: str, ready_text: str, attempts: int = 6) -> None:
    """Open a page, reloading until ``ready_text`` shows (the UI can race the code location)."""
    for attempt in range(attempts):
        try:
            # goto itself can fail (e.g. a navigation the UI starts at the same moment).
            page.goto(url, timeout=60_000, wait_until="domcontentloaded")
            page.get_by_text(ready_text, exact=True).first.wait_for(timeout=20_000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(3)


RUN = """query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status
  tags { key value } assetSelection { path } } } }"""


def wait_run(url: str, page: Page, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run: dict = {}
    while time.monotonic() < deadline:
        run = gql(url, RUN, id=run_id)["runOrError"]
        if run.get("status") in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        time.sleep(3)
    shot(page, "98-run-timeout")
    raise AssertionError(f"run {run_id} not finished in {RUN_TIMEOUT_S} s: {run.get('status')}")


@pytest.mark.timeout(LOAD_TIMEOUT_S + RUN_TIMEOUT_S + 300)  # startup + run + page steps, bounded
def test_materialize_one_partition_from_the_ui(dagster_ui, raw_day, clickhouse):
    url = dagster_ui
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            goto_until(page, f"{url}/asset-groups", "transform_marts")
            shot(page, "01-asset-graph")

            goto_until(page, f"{url}/assets/{MART}", "mart_llm_daily")
            expect(page.get_by_role("button", name="Materialize…")).to_be_visible()
            shot(page, "02-mart-asset")

            # The mart with what it reads (one level up), so one run builds staging and mart.
            goto_until(page, f"{url}/assets/{MART}?view=lineage&lineageScope=upstream&lineageDepth=1",
                       "stg_kafka__agent_events")  # fmt: skip
            shot(page, "03-mart-lineage")

            # The launch dialog by its content (no other dialog opens: the newsletter one is marked seen).
            dialog = page.get_by_role("dialog").filter(has_text="Partition selection")
            page.get_by_role("button", name="Materialize all…").click()
            expect(dialog).to_be_visible()
            partitions = dialog.get_by_placeholder("No matching partitions")
            partitions.fill(DAY.isoformat())
            partitions.press("Enter")
            launch = dialog.get_by_role("button", name="Launch 1 run")
            expect(launch).to_be_enabled()
            shot(page, "04-launch-dialog")
            launch.click()

            toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
            expect(toast).to_be_visible()
            shot(page, "05-launched")
            page.get_by_role("link", name="View").or_(page.get_by_role("button", name="View")).first.click()
            page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"), timeout=UI_TIMEOUT_MS)
            run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]
            shot(page, "06-run-page")

            run = wait_run(url, page, run_id)
            page.reload(wait_until="domcontentloaded")
            expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=60_000)
            shot(page, "07-run-finished")

            goto_until(page, f"{url}/assets/{MART}?view=partitions", "mart_llm_daily")
            shot(page, "08-mart-partitions")
        finally:
            browser.close()

    assert run["status"] == "SUCCESS", f"run {run_id}: {run['status']} (see {ARTIFACTS})"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get("dagster/partition") == DAY.isoformat(), tags
    assert ["marts", "mart_llm_daily"] in [a["path"] for a in run["assetSelection"]]
    with clickhouse.client() as ch:
        calls = ch.query(
            "SELECT sum(calls) FROM marts.mart_llm_daily WHERE day = {d:Date} AND workspace_id = {w:String}",
            parameters={"d": DAY, "w": WORKSPACE},
        ).result_rows[0][0]
    assert calls == raw_day
