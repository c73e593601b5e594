"""Transform jobs and their schedules (UTC).

- every 5 minutes: today's partition of the minute marts that no streaming rollup serves (and what
  they read): the metric-histogram marts and the error-log list,
- hourly: today's partition of every model,
- daily at 00:30: yesterday's partition of every daily model, now that the day is complete.
A tick skips, saying which run, while a run of the same job is still queued or running.
"""

from datetime import datetime, timedelta

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)
from dagster_dbt import build_dbt_asset_selection

from platform_assets.core.partitions import daily_partitions
from platform_assets.transform.assets import dbt_models

# The minute marts the dashboards read for the current day that no rollup serves: the metric
# histograms (a cumulative series becomes deltas only against its previous point, which an
# insert-time view cannot see) and the error-log list. LLM calls, spans, agent and product events
# and log volume of today and yesterday come from the streaming rollups (clickhouse_ddl/010),
# so their marts are built by the hourly and daily runs only.
INTRADAY_MODELS = "+mart_route_latency_1m +mart_llm_latency_1m +mart_token_usage_1m +fct_error_logs"
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
JOB_TAGS = {"platform/domain": "transform"}

transform_intraday_job = define_asset_job(
    "transform_intraday_job",
    selection=build_dbt_asset_selection([dbt_models], dbt_select=INTRADAY_MODELS),
    partitions_def=daily_partitions,
    tags=JOB_TAGS,
)
transform_daily_job = define_asset_job(
    "transform_daily_job",
    selection=build_dbt_asset_selection([dbt_models], dbt_select="fqn:*"),
    partitions_def=daily_partitions,
    tags=JOB_TAGS,
)


def busy_reason(context: ScheduleEvaluationContext, job_name: str) -> SkipReason | None:
    records = context.instance.get_run_records(RunsFilter(job_name=job_name, statuses=ACTIVE), limit=1)
    if not records:
        return None
    run = records[0].dagster_run
    return SkipReason(f"run {run.run_id} of {job_name} is still {run.status.value}: not starting another")


def day_key(at: datetime, days_back: int = 0) -> str:
    return (at.date() - timedelta(days=days_back)).isoformat()


def _scheduled(context: ScheduleEvaluationContext) -> datetime:
    at = context.scheduled_execution_time
    assert at is not None
    return at


def day_schedule(name: str, job, cron: str, days_back: int = 0):
    """A schedule of one day's partition (today, or ``days_back`` days before the tick) that
    skips while a run of the same job is queued or running."""

    @schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,  # marts stay fresh as soon as `dagster dev` runs
    )
    def _day_schedule(context: ScheduleEvaluationContext):
        busy = busy_reason(context, job.name)
        if busy:
            return busy
        at = _scheduled(context)
        day = day_key(at, days_back)
        return RunRequest(run_key=f"{name}:{day}:{at.isoformat()}", partition_key=day)

    return _day_schedule


transform_every_5_minutes = day_schedule("transform_every_5_minutes", transform_intraday_job, "*/5 * * * *")
transform_hourly = day_schedule("transform_hourly", transform_daily_job, "0 * * * *")
transform_previous_day = day_schedule("transform_previous_day", transform_daily_job, "30 0 * * *", days_back=1)


SCHEDULES = [transform_every_5_minutes, transform_hourly, transform_previous_day]
JOBS = [transform_intraday_job, transform_daily_job]
