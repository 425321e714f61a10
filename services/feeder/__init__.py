"""Tick simulator (`mdstack feeder`): seeded random walks posted open-loop to the ingest API."""
