"""Trade-pipeline monitoring (RTTM) in the consumers.

apply.py     fold a batch of RTTM events into Redis state (atomic, once per batch)
sketch.py    latency quantiles: DDSketch buckets kept as Redis hash counters
finalize.py  measure terminal trades once their grace period is over
snapshot.py  TPS, latency, depth, DLQ/errors, stuck trades from that state
alerts.py    threshold rules: fire once, resolve once, persist, publish
ticker.py    the elected worker thread that runs finalize, snapshot and alerts each second
"""
