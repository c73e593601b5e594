"""Superset's import bundle (the v1 ZIP of ``POST /api/v1/dashboard/import/``) from superset_specs.

The bundle holds ``metadata.yaml``, one database (the read-only ``superset`` ClickHouse user over
HTTP: ``clickhousedb://``, clickhouse-connect's SQLAlchemy dialect), a dataset per mart (columns
from its dbt ``.yml``) and per rollup table (columns from ``clickhouse_ddl``), the charts and the
dashboards. Every uuid derives from a stable name, so a second import overwrites the same objects.
The database password is not in the bundle: the import passes it (``passwords``).
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from platform_assets.core.paths import dbt_dir, ddl_dir
from platform_assets.publish.superset_specs import DASHBOARDS, METRICS, Chart, Metric, SupersetDashboard

VERSION = "1.0.0"
NAMESPACE = uuid.UUID("6f1b3c52-8f0e-4f7c-9d3a-2b7e5c1a9d40")  # the platform's Superset objects
DATABASE_NAME = "ClickHouse (platform marts)"
DATABASE_FILE = "databases/ClickHouse_platform.yaml"
ROOT = "platform_superset"
MASK = "XXXXXXXXXX"  # Superset's placeholder for a password given in ``passwords``
TEMPORAL = re.compile(r"^(Nullable\()?(Date|Date32|DateTime|DateTime64)\b")
NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)")
ROLLUP_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS rollups\.(\w+)\s*\((.*?)\)\s*ENGINE", re.S)
ROLLUP_COLUMN = re.compile(r"^\s*(\w+)\s+(.+?),?\s*(--.*)?$")
VIZ = {"line": "echarts_timeseries_line", "bar": "echarts_timeseries_bar"}


def object_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


@dataclass(frozen=True)
class Dataset:
    database: str  # marts | rollups
    table: str
    columns: tuple[tuple[str, str], ...]  # (name, ClickHouse type)
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def uuid(self) -> str:
        return object_uuid("dataset", self.name)

    @property
    def time_column(self) -> str | None:
        return next((n for n, t in self.columns if TEMPORAL.match(t)), None)


def mart_datasets(marts: Path | None = None) -> list[Dataset]:
    """A dataset per model of dbt/models/marts with its declared columns and types."""
    out = []
    for yml in sorted((marts or dbt_dir() / "models" / "marts").rglob("*.yml")):
        for model in (yaml.safe_load(yml.read_text()) or {}).get("models") or []:
            columns = tuple(
                (c["name"], str(c.get("data_type") or "String")) for c in model.get("columns") or [] if c.get("name")
            )
            if columns:
                first = (model.get("description") or "").strip().split("\n")[0]
                out.append(Dataset("marts", model["name"], columns, first))
    return out


def rollup_datasets(ddl: Path | None = None) -> list[Dataset]:
    """A dataset per rollups.* table of the DDL, with its columns (aggregate states included)."""
    out = []
    for sql in sorted((ddl or ddl_dir()).glob("*.sql")):
        for table, body in ROLLUP_TABLE.findall(sql.read_text()):
            columns = []
            for line in body.splitlines():
                m = ROLLUP_COLUMN.match(line)
                if m and not line.strip().startswith("--"):
                    columns.append((m.group(1), m.group(2).strip().rstrip(",")))
            out.append(Dataset("rollups", table, tuple(columns), "streaming minute/hour rollup"))
    return out


def datasets() -> list[Dataset]:
    return [*mart_datasets(), *rollup_datasets()]


@dataclass(frozen=True)
class Connection:
    """Where Superset reaches ClickHouse (its HTTP port) and as whom."""

    host: str
    port: int
    username: str

    def uri(self, database: str = "marts") -> str:
        return f"clickhousedb://{self.username}:{MASK}@{self.host}:{self.port}/{database}"


def database_yaml(conn: Connection) -> dict[str, Any]:
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": conn.uri(),
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_csv_upload": False,
        "extra": {"allows_virtual_table_explore": True, "engine_params": {}, "metadata_cache_timeout": {}},
        "uuid": object_uuid("database", DATABASE_NAME),
        "version": VERSION,
    }


def _column(name: str, ch_type: str) -> dict[str, Any]:
    aggregate_state = ch_type.startswith("AggregateFunction")
    return {
        "column_name": name,
        "verbose_name": None,
        "is_dttm": bool(TEMPORAL.match(ch_type)),
        "is_active": True,
        "type": ch_type,
        "groupby": not aggregate_state,
        "filterable": not aggregate_state,
        "expression": None,
        "description": None,
        "python_date_format": None,
    }


def _metric(m: Metric) -> dict[str, Any]:
    return {
        "metric_name": m.name,
        "verbose_name": m.label or m.name,
        "metric_type": None,
        "expression": m.expression,
        "description": None,
        "d3format": m.d3format,
        "extra": {},
        "warning_text": None,
    }


def dataset_yaml(ds: Dataset) -> dict[str, Any]:
    metrics = [Metric("count", "count()", "rows"), *METRICS.get(ds.name, ())]
    return {
        "table_name": ds.table,
        "main_dttm_col": ds.time_column,
        "description": ds.description or None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": ds.database,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "uuid": ds.uuid,
        "metrics": [_metric(m) for m in metrics],
        "columns": [_column(n, t) for n, t in ds.columns],
        "version": VERSION,
        "database_uuid": object_uuid("database", DATABASE_NAME),
    }


def chart_params(chart: Chart) -> dict[str, Any]:
    filters = [{"expressionType": "SQL", "sqlExpression": chart.where, "clause": "WHERE"}] if chart.where else []
    common: dict[str, Any] = {"adhoc_filters": filters, "time_range": "No filter", "extra_form_data": {}}
    if chart.viz == "big_number_total":
        return {**common, "viz_type": "big_number_total", "metric": chart.metrics[0], "y_axis_format": "SMART_NUMBER"}
    if chart.viz == "funnel":
        return {
            **common,
            "viz_type": "funnel",
            "groupby": [chart.x_axis],
            "metric": chart.metrics[0],
            "row_limit": 100,
            "sort_by_metric": True,
            "show_legend": True,
            "show_labels": True,
            "label_type": "key_value_percent",
            "number_format": "SMART_NUMBER",
        }
    if chart.viz == "table":
        return {
            **common,
            "viz_type": "table",
            "query_mode": "aggregate",
            "groupby": [chart.x_axis, *chart.groupby],
            "metrics": list(chart.metrics),
            "all_columns": [],
            "percent_metrics": [],
            "order_by_cols": [],
            "timeseries_limit_metric": None,
            "order_desc": True,
            "row_limit": 1000,
            "server_pagination": False,
            "server_page_length": 10,
            "page_length": 0,  # every row on one page: the browser test reads them
            "table_timestamp_format": "%Y-%m-%d",
            "show_cell_bars": False,
            "color_pn": False,
            "include_search": False,
        }
    return {
        **common,
        "viz_type": VIZ[chart.viz],
        "x_axis": _x_axis(chart),
        "time_grain_sqla": chart.time_grain,
        "metrics": list(chart.metrics),
        "groupby": list(chart.groupby),
        "row_limit": 10000,
        "order_desc": True,
        "x_axis_sort_asc": True,
        "show_legend": True,
        "rich_tooltip": True,
        "truncate_metric": True,
        "y_axis_format": "SMART_NUMBER",
        "x_axis_time_format": "smart_date",
        "comparison_type": "values",
        "annotation_layers": [],
        "forecastPeriods": 10,
        "forecastInterval": 0.8,
    }


def _x_axis(chart: Chart) -> str | dict[str, Any] | None:
    if not chart.x_sql:
        return chart.x_axis
    return {"expressionType": "SQL", "sqlExpression": chart.x_sql, "label": chart.x_axis}


def chart_yaml(chart: Chart) -> dict[str, Any]:
    return {
        "slice_name": chart.title,
        "description": chart.description or None,
        "certified_by": None,
        "certification_details": None,
        "viz_type": chart_params(chart)["viz_type"],
        "params": chart_params(chart),
        "query_context": None,
        "cache_timeout": None,
        "uuid": object_uuid("chart", chart.key),
        "version": VERSION,
        "dataset_uuid": object_uuid("dataset", chart.dataset),
    }


def position(dash: SupersetDashboard) -> dict[str, Any]:
    """The dashboard's layout (v2): the grid's rows, each with its charts (chartId is resolved from
    the chart's uuid on import)."""
    layout: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dash.title}},
    }
    for r, row in enumerate(dash.rows):
        row_id = f"ROW-{dash.slug}-{r}"
        layout["GRID_ID"]["children"].append(row_id)
        layout[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for chart in row:
            chart_id = f"CHART-{chart.key}"
            layout[row_id]["children"].append(chart_id)
            layout[chart_id] = {
                "type": "CHART",
                "id": chart_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "chartId": 0,
                    "uuid": object_uuid("chart", chart.key),
                    "width": chart.width,
                    "height": 50,
                    "sliceName": chart.title,
                },
            }
    return layout


def dashboard_yaml(dash: SupersetDashboard) -> dict[str, Any]:
    return {
        "dashboard_title": dash.title,
        "description": dash.description,
        "css": "",
        "slug": dash.slug,
        "uuid": object_uuid("dashboard", dash.slug),
        "position": position(dash),
        "metadata": {
            "native_filter_configuration": [],
            "chart_configuration": {},
            "cross_filters_enabled": False,
            "color_scheme": "supersetColors",
            "refresh_frequency": 0,
            "timed_refresh_immune_slices": [],
            "expanded_slices": {},
            "label_colors": {},
            "shared_label_colors": [],
            "color_scheme_domain": [],
        },
        "version": VERSION,
        "published": True,
    }


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")


def bundle_files(conn: Connection, dashboards: tuple[SupersetDashboard, ...] = DASHBOARDS) -> dict[str, dict]:
    """Path in the bundle -> the YAML document; the datasets every chart needs, and all the others."""
    known = {ds.name: ds for ds in datasets()}
    charts = [c for d in dashboards for c in d.charts]
    absent = sorted({c.dataset for c in charts} - set(known))
    if absent:
        raise ValueError(f"Superset charts read tables with no dbt model or DDL: {absent}")
    files: dict[str, dict] = {
        "metadata.yaml": {"version": VERSION, "type": "Dashboard", "timestamp": "2026-01-01T00:00:00+00:00"},
        DATABASE_FILE: database_yaml(conn),
    }
    for ds in known.values():
        files[f"datasets/ClickHouse_platform/{ds.database}_{ds.table}.yaml"] = dataset_yaml(ds)
    for chart in charts:
        files[f"charts/{_file_name(chart.key)}.yaml"] = chart_yaml(chart)
    for dash in dashboards:
        files[f"dashboards/{_file_name(dash.slug)}.yaml"] = dashboard_yaml(dash)
    return files


def bundle_zip(files: dict[str, dict]) -> bytes:
    """The ZIP Superset imports: every file under one root folder, YAML in a fixed order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{ROOT}/{path}", date_time=(2026, 1, 1, 0, 0, 0))
            z.writestr(info, yaml.safe_dump(files[path], sort_keys=False, allow_unicode=True))
    return buf.getvalue()
