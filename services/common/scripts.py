"""Lua scripts shipped in `services/common/lua`, registered on a client."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any


@cache
def source(name: str) -> str:
    """Script text; scripts that publish get the shared `publish` function prepended."""
    lua = files("services.common") / "lua"
    text = (lua / f"{name}.lua").read_text()
    if "publish(" in text:
        text = (lua / "publish.lua").read_text() + "\n" + text
    return text


def register(client: Any, name: str) -> Any:
    """A `Script` (or `AsyncScript` for an asyncio client); call it with `args=` and optional `client=`."""
    return client.register_script(source(name))
