"""Prometheus view of a running feeder (served on METRICS_PORT), refreshed once per progress interval."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge

TICKS = Gauge("mdstack_feeder_ticks", "Ticks so far", ["state"])
RATE = Gauge("mdstack_feeder_rate", "Ticks sent per second over the last interval")
ACK_LATENCY = Gauge("mdstack_feeder_ack_latency_ms", "Ack latency over the last interval", ["quantile"])
TRADES = Gauge("mdstack_feeder_trades", "Simulated trades so far, by what became of them", ["state"])
TRADE_EVENTS = Gauge("mdstack_feeder_trade_events", "Trade-pipeline events so far", ["kind", "state"])


def update(line: dict[str, Any], by_kind: dict[str, dict[str, Any]] | None = None) -> None:
    for state in ("sent", "acknowledged", "errors", "retries", "behind"):
        TICKS.labels(state).set(line[state])
    RATE.set(line["rate"])
    for quantile in ("p50", "p95", "p99"):
        value = line.get(f"{quantile}_ms")
        if value is not None:
            ACK_LATENCY.labels(quantile).set(value)
    for state in ("started", "completed", "failed", "stuck", "errored"):
        value = line.get(f"trades_{state}")
        if value is not None:
            TRADES.labels(state).set(value)
    for kind, counts in (by_kind or {}).items():
        for state in ("sent", "acknowledged", "rejected", "errors"):
            TRADE_EVENTS.labels(kind, state).set(counts[state])
