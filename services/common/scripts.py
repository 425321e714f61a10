"""Lua scripts shipped in `services/common/lua`, registered on a client."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from redis.commands.core import AsyncScript, Script


@cache
def source(name: str) -> str:
    """Script text; scripts that publish get the shared `publish` function prepended."""
    lua = files("services.common") / "lua"
    text = (lua / f"{name}.lua").read_text()
    if "publish(" in text:
        text = (lua / "publish.lua").read_text() + "\n" + text
    return text


def register(client, name: str) -> Script | AsyncScript:  # type: ignore[no-untyped-def]
    return client.register_script(source(name))
