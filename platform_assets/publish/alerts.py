"""Alert rules as code (Grafana unified alerting), built with grafana-foundation-sdk.

Every rule is three queries: A, the ClickHouse SQL in ``sql/alerts/`` returning one number per
series (string columns become labels, so a per-service query alerts per service); B reduces A
to its last value; C compares B with the threshold and is the rule's condition. The marts
behind the minute-level rules are rebuilt every 5 minutes, so they see data up to ~5 minutes late.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import RelativeTimeRange

from platform_assets.publish.alert_spec import AlertSpec, alert_query
from platform_assets.publish.alerts_health import HEALTH_ALERTS
from platform_assets.publish.clickhouse_query import DATASOURCE_UID, ClickHouseQuery

FOLDER_UID = "platform"
FOLDER_TITLE = "Platform"
RULE_GROUP = "platform-slos"
EVALUATION_INTERVAL = "1m"
ORG_ID = 1
EXPRESSION_UID = "__expr__"  # Grafana's server-side expressions datasource
P95_TARGET_MS = 5000.0  # p95 LLM latency objective per model

ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(
        uid="platform-agent-error-rate",
        title="Agent error rate above 2%",
        sql=alert_query("agent_error_rate"),
        op="gt",
        threshold=0.02,
        for_="5m",
        summary="LLM call error rate of {{ $labels.service }} is {{ humanizePercentage $values.B.Value }} (over 2%).",
    ),
    AlertSpec(
        uid="platform-agent-p95-latency",
        title=f"Agent p95 latency above {P95_TARGET_MS:.0f} ms",
        sql=alert_query("agent_p95_latency"),
        op="gt",
        threshold=P95_TARGET_MS,
        for_="10m",
        summary="p95 latency of {{ $labels.model }} is {{ $values.B.Value }} ms (target "
        f"{P95_TARGET_MS:.0f} ms).",
    ),
    AlertSpec(
        uid="platform-dau-drop",
        title="DAU down more than 20% day over day",
        sql=alert_query("dau_drop"),
        op="gt",
        threshold=0.2,
        for_="0s",  # compares two finished days: no need to wait
        summary="Yesterday's DAU is {{ humanizePercentage $values.B.Value }} below the day before.",
        lookback_s=3 * 86400,
    ),
    AlertSpec(
        uid="platform-agent-no-data",
        title="No agent events for 5 minutes",
        sql=alert_query("agent_no_data"),
        op="lt",
        threshold=1,
        for_="0s",  # the query window already is the 5 minutes
        summary="No agent event has arrived in ClickHouse for 5 minutes (collector, Kafka or ingestion down?).",
        no_data_state="Alerting",
    ),
    AlertSpec(
        uid="platform-cost-spike",
        title="LLM cost per minute above 3x its 7-day baseline",
        sql=alert_query("cost_spike"),
        op="gt",
        threshold=3,
        for_="5m",
        summary="LLM spend per minute is {{ $values.B.Value }}x its 7-day average.",
        lookback_s=7 * 86400 + 600,
    ),
    *HEALTH_ALERTS,
)


def _rule(spec: AlertSpec) -> alerting.Rule:
    query = (
        alerting.Query("A")
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(RelativeTimeRange(from_val=spec.lookback_s, to=0))
        .model(ClickHouseQuery(spec.sql, ref_id="A").format("table"))
    )
    reduce = (
        alerting.Query("B")
        .datasource_uid(EXPRESSION_UID)
        .relative_time_range(RelativeTimeRange(from_val=0, to=0))  # expressions read no time range
        .model(expr.TypeReduce().ref_id("B").expression("A").reducer("last"))
    )
    threshold = (
        alerting.Query("C")
        .datasource_uid(EXPRESSION_UID)
        .relative_time_range(RelativeTimeRange(from_val=0, to=0))
        .model(
            expr.TypeThreshold()
            .ref_id("C")
            .expression("B")
            .conditions(
                [
                    expr.ExprTypeThresholdConditions().evaluator(
                        expr.ExprTypeThresholdConditionsEvaluator().type(spec.op).params([spec.threshold])
                    )
                ]
            )
        )
    )
    return (
        alerting.Rule(spec.title)
        .uid(spec.uid)
        .folder_uid(FOLDER_UID)
        .rule_group(RULE_GROUP)
        .org_id(ORG_ID)
        .queries([query, reduce, threshold])
        .condition("C")
        .for_val(spec.for_)
        .no_data_state(spec.no_data_state)
        .exec_err_state("Error")
        .labels({"team": "data-platform", **spec.labels})
        .annotations({"summary": spec.summary})
    )


def alert_rules() -> list[dict[str, Any]]:
    """Rules in the provisioning API's shape (POST/PUT /api/v1/provisioning/alert-rules)."""
    return [json.loads(json.dumps(_rule(spec).build(), cls=JSONEncoder)) for spec in ALERTS]


_FILE_KEYS = ("uid", "title", "condition", "data", "noDataState", "execErrState", "for", "annotations", "labels")


def provisioning_file() -> dict[str, Any]:
    """The same rules in Grafana's file-provisioning format (provisioning/alerting/*.yaml)."""
    rules = [{k: rule[k] for k in _FILE_KEYS if k in rule} for rule in alert_rules()]
    group = {"orgId": ORG_ID, "name": RULE_GROUP, "folder": FOLDER_TITLE, "interval": EVALUATION_INTERVAL}
    return {"apiVersion": 1, "groups": [{**group, "rules": rules}]}
