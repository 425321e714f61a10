"""HTTP clients for tests and the bench, against loopback servers."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls() -> ssl.SSLContext:
    """One TLS context for test clients (`httpx.AsyncClient(verify=client_tls())`): each client otherwise loads the
    CA bundle again, 30-300 ms here, for loopback URLs that never use it."""
    return ssl.create_default_context()


@functools.cache
def http() -> httpx.Client:
    """One client for the plain-HTTP calls of tests and the bench: `httpx.get`/`httpx.post` build a client per call,
    20-35 ms of TLS set-up each. It keeps no idle connection, so no call races a server closing one."""
    return httpx.Client(timeout=10.0, verify=client_tls(), limits=httpx.Limits(max_keepalive_connections=0))
