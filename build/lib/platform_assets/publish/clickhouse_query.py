"""A grafana-foundation-sdk query type for the ClickHouse plugin (grafana-clickhouse-datasource).

The SDK ships no ClickHouse query, so this is a small ``Dataquery`` variant plus its builder,
serialised the way the plugin (v4) stores a raw-SQL target: ``editorType: sql``, ``rawSql``,
a numeric ``format`` (0 time series, 1 table) and the matching ``queryType``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "platform-clickhouse"  # the same uid as docker/grafana/provisioning/datasources

Format = Literal["table", "time_series"]
# The plugin's enum (src/types.ts): a string here would render "No data" without an error.
_FORMAT_CODE = {"time_series": 0, "table": 1}
_QUERY_TYPE = {"time_series": "timeseries", "table": "table"}


def datasource_ref() -> DataSourceRef:
    return DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class ClickHouseDataquery(cogvariants.Dataquery):
    def __init__(self, ref_id: str = "A", raw_sql: str = "", format_val: Format = "table") -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val: Format = format_val
        self.hide: bool | None = None

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": datasource_ref().to_json(),
            "editorType": "sql",
            "rawSql": self.raw_sql,
            "format": _FORMAT_CODE[self.format_val],
            "queryType": _QUERY_TYPE[self.format_val],
        }
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClickHouseDataquery:
        format_val: Format = "time_series" if data.get("format") == _FORMAT_CODE["time_series"] else "table"
        query = cls(data.get("refId", "A"), data.get("rawSql", ""), format_val)
        query.hide = data.get("hide")
        return query


class ClickHouseQuery(cogbuilder.Builder[ClickHouseDataquery]):
    """``ClickHouseQuery("SELECT ...").format("time_series")``"""

    def __init__(self, raw_sql: str, ref_id: str = "A") -> None:
        self._internal = ClickHouseDataquery(ref_id, raw_sql)

    def build(self) -> ClickHouseDataquery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def format(self, format_val: Format) -> Self:
        self._internal.format_val = format_val
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self


# Lets the SDK decode dashboards that hold ClickHouse targets (Dashboard.from_json).
cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=ClickHouseDataquery.from_json)
)
