"""Tuning constants of flusher, each with the reason for its value (the settings a deployment
changes are in the settings model; these are the ones it should not need to)."""

# writer
READ_COUNT = 200  # stream entries per XREADGROUP call
CLAIM_EVERY_S = 5.0  # how often to look for entries a dead flusher left pending
GATHER_MS = 100  # once a batch holds an entry, reads come this often (a batch closes up to this late)
IDLE_WAIT_MS = 1000  # after an empty round, one read blocks this long (a stop waits for it at most)
BACKOFF_MAX_S = 5.0  # retries after a lost Redis or Postgres double up to this

# partitions
LOCK_TIMEOUT_MS = 2000  # DDL queues behind open transactions and blocks new ones meanwhile: keep the wait short
RETRY_S = 60.0  # a run that could not finish (lock timeout, Postgres down) is tried again this soon

# aged_rows
CHUNK = 10_000  # rows per DELETE transaction, so none holds locks on millions of rows at once

# dead_letter
MAX_KEY_CHARS = 500  # a dead letter's key must fit a btree index row (2,704 bytes) whatever the input was
