"""The gateway's block of settings: who may read, and whose X-Forwarded-For is believed."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from services.common.settings import Settings


def test_trusted_proxies_are_ip_addresses_and_networks() -> None:
    settings = Settings(TRUSTED_PROXIES=" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,, ")
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.168.1.7", "fd00::/8"]


@pytest.mark.parametrize("entry", ["*", "proxy.internal", "10.0.0.0/33", "10.0.0.1; rm"])
def test_a_trusted_proxy_that_is_not_an_address_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR")):
        Settings(TRUSTED_PROXIES=f"127.0.0.1,{entry}")


@pytest.mark.parametrize(
    ("values", "public"),
    [
        ({}, True),  # no read key: nothing to require
        ({"API_KEY": ""}, True),
        ({"API_KEY": "k" * 16}, False),
        ({"API_KEY": "k" * 16, "PUBLIC_READS": True}, True),
    ],
)
def test_reads_are_public_without_a_key_or_when_declared(values: dict[str, object], public: bool) -> None:
    assert Settings(**values).reads_are_public is public  # type: ignore[arg-type]


def test_cors_allows_no_origin_by_default() -> None:
    assert Settings().cors_origins == []
