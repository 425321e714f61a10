"""Lua scripts, each shipped next to the module that owns it, registered on a client.

`register(client, "windows", __package__)` loads `services/consumers/windows.lua`. Scripts that publish get
the shared `publish` function (`services/common/publish.lua`) prepended.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

COMMON = "services.common"


@cache
def source(name: str, package: str = COMMON) -> str:
    """The text of `<package>/<name>.lua`, with `publish.lua` prepended when the script calls `publish(`."""
    text = (files(package) / f"{name}.lua").read_text()
    if "publish(" in text and (package, name) != (COMMON, "publish"):
        text = source("publish") + "\n" + text
    return text


def register(client: Any, name: str, package: str = COMMON) -> Any:
    """A `Script` (or `AsyncScript` for an asyncio client); call it with `args=` and optional `client=`."""
    return client.register_script(source(name, package))
