"""An instrumented program as OpenTelemetry's Python documentation writes one: the SDK's tracer,
meter and logger providers with the OTLP exporters, configured by the standard environment
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_COMPRESSION``,
...), nothing of the platform imported.

    python -m platform_assets.synthetic.otel_program grpc|http semconv|common --marker M

sends traces (an agent run with LLM and tool calls), metrics (a counter, a histogram of request
durations per route, a gauge, token usage) and logs (with an e-mail address in the body and user
attributes) over OTLP/gRPC or OTLP/HTTP. ``semconv`` writes the OpenTelemetry semantic-convention
attribute names; ``common`` the older names many instrumentations use (``model``, ``provider``,
``route``, ``agent`` on the resource; ``tokens_prompt``, ``tokens_completion``, ``cost_usd``,
``status``, ``user_id``, ``user_email`` on the spans). It prints, as JSON, what it recorded: the
tests and the demo compare the platform's tables with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

# Seconds; the boundaries the HTTP semantic conventions advise for http.server.request.duration.
DURATION_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
ROUTES = {"/api/chat": 0.18, "/api/search": 0.04}  # route -> typical duration (s)
USER_ID = "12345"
USER_EMAIL = "jane.doe@example.com"


def exporters(protocol: str) -> tuple[Any, Any, Any]:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[assignment]
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return OTLPSpanExporter(), OTLPMetricExporter(), OTLPLogExporter()


def llm_attributes(
    style: str, model: str, tokens: tuple[int, int, int, int], user_id: str, email: str
) -> dict[str, Any]:
    tokens_in, tokens_out, cached, reasoning = tokens
    if style == "semconv":
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "gen_ai.usage.cache_read.input_tokens": cached,
            "gen_ai.usage.reasoning.output_tokens": reasoning,
            "enduser.id": user_id,
            "user.email": email,
        }
    return {
        "tokens_prompt": tokens_in,
        "tokens_completion": tokens_out,
        "cost_usd": round(tokens_in * 1.5e-7 + tokens_out * 6e-7, 9),
        "status": "ok",
        "user_id": user_id,
        "user_email": email,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("protocol", choices=["grpc", "http"])
    parser.add_argument("style", choices=["semconv", "common"])
    parser.add_argument("--marker", required=True)
    parser.add_argument("--workspace", default="ws-otel")
    parser.add_argument("--requests", type=int, default=40, help="requests per route")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--user-id", default=USER_ID, help="the end user's id, sent as user_id / enduser.id")
    parser.add_argument("--email", default=USER_EMAIL, help="the end user's e-mail, in attributes and a log body")
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    model = "gpt-4o-mini"

    attrs: dict[str, Any] = {
        "service.version": "1.4.2",
        "deployment.environment.name": "test",
        "tenant.id": args.workspace,
        "test.marker": args.marker,
    }
    if args.style == "common":
        attrs.update({"model": model, "provider": "openai", "route": "/api/chat", "agent": "support-bot"})
    resource = Resource.create(attrs)  # plus OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    span_exporter, metric_exporter, log_exporter = exporters(args.protocol)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))
    logging.getLogger().setLevel(logging.INFO)

    tracer = trace.get_tracer("support-bot")
    meter = metrics.get_meter("support-bot")
    log = logging.getLogger("support-bot")
    duration = meter.create_histogram(
        "http.server.request.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BOUNDS
    )
    requests_counter = meter.create_counter("app.requests", unit="{request}")
    queue_depth = meter.create_gauge("app.queue.depth", unit="{item}")
    token_usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    # The GenAI conventions' advised boundaries for gen_ai.client.operation.duration (seconds).
    llm_duration = meter.create_histogram(
        "gen_ai.client.operation.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=[0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24],
    )

    record: dict[str, Any] = {"durations": {}, "tokens": {"input": 0, "output": 0, "cached": 0, "reasoning": 0}}
    record.update(protocol=args.protocol, style=args.style, marker=args.marker, traces=[], logs=0, errors=0)
    for route, typical in ROUTES.items():
        values = []
        for i in range(args.requests):
            failed = i % 10 == 9
            value = round(typical * rnd.uniform(0.5, 2.0), 4)
            values.append(value)
            status = 500 if failed else 200
            duration.record(
                value, {"http.route": route, "http.request.method": "POST", "http.response.status_code": status}
            )
            requests_counter.add(1, {"http.route": route})
        record["durations"][route] = values
    for run in range(3):
        tokens_in, tokens_out, cached, reasoning = 1000 + 100 * run, 200 + 10 * run, 400, 50
        with tracer.start_as_current_span("invoke_agent support-bot") as root:
            record["traces"].append(format(root.get_span_context().trace_id, "032x"))
            if args.style == "semconv":
                root.set_attribute("gen_ai.agent.name", "support-bot")
            with tracer.start_as_current_span(f"chat {model}", kind=trace.SpanKind.CLIENT) as call:
                for key, value in llm_attributes(
                    args.style, model, (tokens_in, tokens_out, cached, reasoning), args.user_id, args.email
                ).items():
                    call.set_attribute(key, value)
                if args.style == "semconv":
                    call.set_attribute("http.route", "/api/chat")
            llm_attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.provider.name": "openai",
            }
            llm_seconds = round(0.4 + 0.3 * run, 3)
            llm_duration.record(llm_seconds, llm_attrs)
            record.setdefault("llm_durations", []).append(llm_seconds)
            for kind, count in (("input", tokens_in), ("output", tokens_out)):
                token_usage.record(count, {"gen_ai.token.type": kind, "gen_ai.request.model": model})
            record["tokens"]["input"] += tokens_in
            record["tokens"]["output"] += tokens_out
            record["tokens"]["cached"] += cached
            record["tokens"]["reasoning"] += reasoning
            log.info("agent run %d finished", run, extra={"user_id": args.user_id})
            record["logs"] += 1
            if run == 2:
                with tracer.start_as_current_span("execute_tool lookup_order") as tool:
                    tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
                    log.error(
                        "lookup_order failed for %s", args.email, extra={"user_email": args.email, "order": "A-1"}
                    )
                    record["logs"] += 1
                    record["errors"] += 1
    queue_depth.set(7, {"queue": "jobs"})
    record["queue_depth"] = 7

    tracer_provider.shutdown()  # flushes: every span, metric point and log record is sent before exit
    meter_provider.shutdown()
    logger_provider.shutdown()
    record["service"] = os.environ.get("OTEL_SERVICE_NAME", "")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
