"""Alert rules on the platform's own health (ClickHouse system tables, the collector, consumer lag)."""

from __future__ import annotations

from platform_assets.publish.alert_spec import AlertSpec

HEALTH_ALERTS: tuple[AlertSpec, ...] = ()
