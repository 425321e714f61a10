from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common.settings import SERVERS_FILE, Settings, load_settings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_pg_url_is_normalised_for_psycopg3(given: str, expected: str) -> None:
    settings = Settings(PG_URL=given)
    assert settings.PG_URL == expected
    assert settings.pg_dsn == expected.replace("postgresql+psycopg://", "postgresql://")


def test_production_refuses_demo_secrets() -> None:
    with pytest.raises(ValidationError, match="demo defaults are in use for: INGEST_USERNAME, INGEST_PASSWORD"):
        Settings(MDSTACK_ENV="production", INTERNAL_TOKEN="real-token-0123")


def test_production_with_real_secrets_starts() -> None:
    settings = Settings(
        MDSTACK_ENV="production",
        INGEST_USERNAME="feed",
        INGEST_PASSWORD="s3cret-password",
        INTERNAL_TOKEN="t0ken-0123456789",
        PUBLIC_READS=True,
        REDIS_URL="redis://:redis-password-0123@redis:6379/0",
        CORS_ORIGINS="https://md.example",
    )
    assert settings.demo_secrets_in_use == []


def test_demo_secrets_are_reported_in_development() -> None:
    assert Settings().demo_secrets_in_use == ["INGEST_USERNAME", "INGEST_PASSWORD", "INTERNAL_TOKEN"]


def test_env_vars_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_RETRY_INTERVALS", "1,2")
    monkeypatch.setenv("SSE_PING_S", "12.5")
    settings = Settings()
    assert settings.SSE_PING_S == 12.5
    assert settings.retry_intervals == [1, 2]


def test_load_settings_joins_the_servers_of_a_running_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("PG_URL", raising=False)
    (tmp_path / SERVERS_FILE).write_text(json.dumps({"REDIS_URL": "redis://x:1/0", "PG_URL": "postgresql://y/z"}))
    settings = load_settings(STATE_DIR=str(tmp_path))
    assert settings.REDIS_URL == "redis://x:1/0"
    assert settings.PG_URL == "postgresql+psycopg://y/z"


def test_unset_urls_explain_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(RuntimeError, match="REDIS_URL is not set"):
        _ = Settings().redis_url


def test_blank_kafka_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a prompted variable left blank (Render's sync: false) or compose's ${NAME:-} gives.
    for name in ("BOOTSTRAP_SERVERS", "SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD"):
        monkeypatch.setenv(f"KAFKA_{name}", "")
    settings = Settings()
    assert settings.KAFKA_BOOTSTRAP_SERVERS is None
    assert settings.KAFKA_SECURITY_PROTOCOL == "PLAINTEXT"
    assert (settings.KAFKA_SASL_MECHANISM, settings.KAFKA_SASL_USERNAME, settings.KAFKA_SASL_PASSWORD) == (None,) * 3
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="KAFKA_SASL_MECHANISM goes with"):
        Settings()


def test_tick_sizes_override_the_demo_symbols_and_default_the_rest() -> None:
    settings = Settings(TICK_SIZES="ACME=0.05, BTCUSDT=0.1,")
    assert settings.tick_size("ACME") == 0.05
    assert settings.tick_size("BTCUSDT") == 0.1
    assert settings.tick_size("EURUSD") == 0.00001
    assert settings.tick_size("OTHER") == 0.01


@pytest.mark.parametrize("bad", ["ACME", "ACME=0", "ACME=-1", "ACME=x", "=0.1", "ACME=inf"])
def test_a_bad_tick_size_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(ValidationError, match="TICK_SIZES: .* is not SYMBOL=SIZE"):
        Settings(TICK_SIZES=bad)
