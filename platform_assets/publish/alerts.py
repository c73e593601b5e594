"""Alert rules as code (Grafana unified alerting), built with grafana-foundation-sdk.

Every rule is three queries: A, the ClickHouse SQL in ``sql/alerts/`` returning one number per
series (string columns become labels, so a per-service query alerts per service); B reduces A
to its last value; C compares B with the threshold and is the rule's condition. The rules read
the streaming rollups (clickhouse_ddl/010), filled as rows land, so a rule sees data about a second
old. Every rule carries the label team=data-platform; the notification policy routes that label to
the platform's webhook contact point (its URL: setting ALERT_WEBHOOK_URL).
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
        summary="LLM call error rate of {{ $labels.service }} is {{ humanizePercentage $values.B.Value }} over the "
        "last 5 minutes (over 2%).",
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
        for_="0s",  # two 24-hour windows: a drop is already a day's worth
        summary="Users of {{ $labels.workspace_id }} in the last 24 hours are {{ humanizePercentage $values.B.Value }} "
        "fewer than in the 24 hours before.",
        lookback_s=2 * 86400,
    ),
    AlertSpec(
        uid="platform-signal-no-data",
        title="No data from a signal for 5 minutes",
        sql=alert_query("signal_no_data"),
        op="lt",
        threshold=1,
        for_="0s",  # the query window already is the 5 minutes
        summary="No {{ $labels.signal }} from {{ $labels.service }} for 5 minutes, after data in the last day "
        "(the sender, the collector, Kafka or ingestion is down?).",
        no_data_state="Alerting",  # no row at all: nothing arrived from any signal for a day
    ),
    AlertSpec(
        uid="platform-cost-spike",
        title="LLM cost per minute above 3x its 7-day baseline for the hour",
        sql=alert_query("cost_spike"),
        op="gt",
        threshold=3,
        for_="5m",
        summary="LLM spend per minute of {{ $labels.workspace_id }} is {{ $values.B.Value }}x its average in the same "
        "hour of the last 7 days.",
        lookback_s=8 * 86400,
    ),
    AlertSpec(
        uid="platform-spend-guardrail",
        title="Workspace LLM spend today over its daily guardrail",
        sql=alert_query("spend_guardrail"),
        op="gt",
        threshold=1,
        for_="0s",  # spend only grows during the day: once over, it stays over until midnight
        summary="LLM spend of {{ $labels.workspace_id }} since 00:00 UTC is {{ humanizePercentage $values.B.Value }} "
        "of its daily guardrail (seed workspace_spend_guardrails).",
        lookback_s=86400,
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
