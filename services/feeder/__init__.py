"""Feeder (`mdstack feeder`): seeded ticks and trade lifecycles posted open-loop to the ingest API."""
