"""Every table kept to its retention, by the flusher itself (no cron): at start, then every RETENTION_EVERY_S.

One pass: the daily partitions of the event tables (partitions.py: days made
ahead, days past RETENTION_DAYS dropped whole), then the tables retained by
age (candles past CANDLE_RETENTION_DAYS, dead letters past
DEAD_LETTER_RETENTION_DAYS), deleted in chunks. It runs in a thread of its
own connection, so a long pass never holds up flushing; a pass that could not
finish is tried again within RETRY_S.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg

from services.common.logging import get_logger
from services.common.settings import Settings
from services.flusher import candle_store, dead_letter
from services.flusher.defaults import RETRY_S
from services.flusher.partitions import Report, maintain

log = get_logger(__name__)


class Maintainer:
    """`run_once` at start, then `start` a thread for the interval."""

    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop

    def run_once(self, now: datetime | None = None) -> Report | None:
        """One pass; the partition report (None when another flusher holds the partition lock)."""
        now = now or datetime.now(UTC)
        settings = self.settings
        try:
            with psycopg.connect(settings.pg_dsn, autocommit=True, connect_timeout=5) as conn:
                report = maintain(
                    conn, now=now, retention_days=settings.RETENTION_DAYS, ahead_days=settings.PARTITIONS_AHEAD_DAYS
                )
                deleted = {
                    "candles": candle_store.delete_expired_candles(conn, now, settings),
                    "dead_letters": dead_letter.delete_expired_dead_letters(conn, now, settings),
                }
        except psycopg.Error as exc:  # Postgres down: the flusher retries its writes, this retries in RETRY_S
            log.error("retention.failed", error=str(exc).strip(), retry_in_s=RETRY_S)
            return Report(failed=[f"connect: {str(exc).strip()}"])
        if any(deleted.values()):
            log.info("retention.deleted", **deleted)
        return report

    def run(self) -> None:
        interval = self.settings.RETENTION_EVERY_S
        delay = interval
        while not self.stop.wait(delay):
            report = self.run_once()
            delay = min(RETRY_S, interval) if report is not None and report.failed else interval

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="retention", daemon=True)
        thread.start()
        return thread
