"""Retention by age for tables that are not partitioned (candles, dead letters): DELETE in chunks."""

from __future__ import annotations

from datetime import datetime

import psycopg

from services.flusher.defaults import CHUNK


def delete_older(conn: psycopg.Connection, table: str, column: str, cutoff: datetime) -> int:
    """Delete the rows of `table` whose `column` is before `cutoff`, CHUNK rows per transaction; returns how many."""
    sql = f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {column} < %s LIMIT {CHUNK}))"
    total = 0
    while True:
        with conn.transaction():
            deleted = conn.execute(sql, (cutoff,)).rowcount
        total += deleted
        if deleted < CHUNK:
            return total
