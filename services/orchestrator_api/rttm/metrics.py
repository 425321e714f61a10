"""The RTTM snapshot in Prometheus form, on the API's /metrics.

The elected worker computes the snapshot; every API process reads the
stored one at scrape time, so the figures agree whichever process answers.
Latency quantiles are exported the way a Prometheus summary exports them
(a `quantile` label), from the DDSketch the workers keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.keys import Keys
from services.common.settings import Settings


class SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: dict[str, Any] | None = None

    async def refresh(self, client: Any, settings: Settings) -> None:
        raw = await client.get(Keys(settings.KEY_PREFIX).rttm_snapshot)
        self.snapshot = orjson.loads(raw) if raw else None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.snapshot
        if s is None:
            return
        tps = GaugeMetricFamily("mdstack_rttm_tps", "Trade events per second (last 10 s)")
        tps.add_metric([], s["tps"]["current"])
        yield tps
        by_service = GaugeMetricFamily(
            "mdstack_rttm_service_tps", "Trade events per second by service (60 s)", labels=["service"]
        )
        for service, rate in s["tps"]["by_service"].items():
            by_service.add_metric([service], rate)
        yield by_service
        # Stages are services, named by clients: end-to-end has a family of its own, so no service can pose as it.
        latency = GaugeMetricFamily("mdstack_rttm_latency_ms", "Stage latency over the window, by service",
                                    labels=["stage", "quantile"])  # fmt: skip
        for stage, q in s["latency_ms"]["stages"].items():
            for labels, value in _quantiles(q):
                latency.add_metric([stage, *labels], value)
        yield latency
        end_to_end = GaugeMetricFamily("mdstack_rttm_end_to_end_latency_ms", "End-to-end latency over the window",
                                       labels=["quantile"])  # fmt: skip
        for labels, value in _quantiles(s["latency_ms"]["end_to_end"]):
            end_to_end.add_metric(labels, value)
        yield end_to_end
        lag = GaugeMetricFamily("mdstack_rttm_queue_lag", "Produced minus consumed offset",
                                labels=["service", "topic", "partition"])  # fmt: skip
        for p in s["pipeline"]["partitions"]:
            lag.add_metric([p["service"], p["topic"], str(p["partition"])], p["lag"])
        yield lag
        for name, section, help_ in (
            ("mdstack_rttm_dlq_window", "dlq", "DLQ events in the window, by service"),
            ("mdstack_rttm_errors_window", "errors", "Error events in the window, by service"),
        ):
            family = GaugeMetricFamily(name, help_, labels=["service"])
            for service, n in s[section]["by_service"].items():
                family.add_metric([service], n)
            yield family
        stuck = GaugeMetricFamily("mdstack_rttm_stuck_trades", "Non-terminal trades silent past the threshold")
        stuck.add_metric([], s["stuck"]["count"])
        yield stuck
        firing = GaugeMetricFamily("mdstack_rttm_alerts_firing", "Alerts firing", labels=["rule"])
        for alert in s.get("alerts", []):
            firing.add_metric([alert["rule"]], 1)
        yield firing


def _quantiles(q: dict[str, Any]) -> Iterator[tuple[list[str], float]]:
    for name, quantile in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
        if q[name] is not None:
            yield [quantile], q[name]


SNAPSHOT = SnapshotCollector()
REGISTRY.register(SNAPSHOT)
