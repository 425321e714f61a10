"""What the API holds for its lifetime, created in the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import redis
import redis.asyncio as aioredis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.keys import Keys
from services.common.settings import Settings
from services.orchestrator_api.ingest.budget import RateMeter
from services.orchestrator_api.ingest.commit import GroupCommitter


@dataclass
class AppState:
    settings: Settings
    redis: aioredis.Redis
    sync_redis: redis.Redis
    engine: AsyncEngine
    committer: GroupCommitter
    rate_meter: RateMeter = field(default_factory=RateMeter)  # ingest rate for GET /system's projection

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.KEY_PREFIX)


async def get_state(request: Request) -> AppState:
    return request.app.state.mdstack  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]
