"""Redis access is not code execution on the workers (issue 13, item 3).

RQ's default serializer is pickle: a job hash planted in Redis would run code
in the worker that unpickles it. Jobs are JSON now, and a worker runs only
`process_batch(batch_id)`. Pickled jobs an older version left are rewritten
as JSON at the API's start, or dropped when they are not ours.
"""

from __future__ import annotations

import os
import pickle
import zlib
from pathlib import Path

import anyio
import pytest
import redis
from rq import Callback, Queue

from harness.http import http
from services.common.jobs import PROCESS_BATCH, BatchJob, batch_id_of, is_json, job_queue, legacy_batch_id
from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers import context
from services.consumers.worker import make_worker
from services.orchestrator_api.app import create_app
from services.orchestrator_api.upgrade import upgrade_jobs
from tests.consumers.test_calc import T0, tick
from tests.consumers.test_worker import api_url, post  # noqa: F401  (api_url: the fixture, shared)


class MakeDir:
    """A pickle that creates a directory when it is unpickled: what an attacker with Redis access would plant."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.path,)


def record_call(*_args: object, **_kwargs: object) -> None:
    """A callback that leaves a mark (a job may name it as on_success/on_failure)."""
    Path(os.environ["MDSTACK_TEST_MARK"]).mkdir()


@pytest.fixture
def client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


def work(settings: Settings) -> None:
    make_worker(context.configure(settings)).work(burst=True)


def planted(client: redis.Redis, settings: Settings, data: bytes, **fields: bytes) -> str:
    """A queued job whose data (and other fields) are what an attacker wrote; returns its id."""
    job = Queue(settings.QUEUE_NAME, connection=client).enqueue(PROCESS_BATCH, batch_id="b1")  # RQ's default: pickle
    client.hset(job.key, mapping={"data": data, **fields})
    return job.id


def test_a_planted_pickle_job_is_never_unpickled_by_a_worker(
    settings: Settings, client: redis.Redis, tmp_path: Path
) -> None:
    evil = pickle.dumps(MakeDir(tmp_path / "from-data"))
    job_id = planted(client, settings, zlib.compress(evil), meta=pickle.dumps(MakeDir(tmp_path / "from-meta")))

    work(settings)

    assert list(tmp_path.iterdir()) == []
    assert job_queue(settings, client).failed_job_registry.get_job_ids() == [job_id]
    assert BatchJob.fetch(job_id, connection=client).retries_left == 0  # refused once, not retried
    pickle.loads(evil)  # the control: unpickled, the same bytes do create the directory
    assert [p.name for p in tmp_path.iterdir()] == ["from-data"]


def test_a_json_job_naming_another_function_is_not_run(settings: Settings, client: redis.Redis, tmp_path: Path) -> None:
    queue = job_queue(settings, client)
    other = queue.enqueue("os.mkdir", str(tmp_path / "from-func"))
    with_instance = queue.enqueue_call(PROCESS_BATCH, kwargs={"batch_id": "b2"})
    client.hset(with_instance.key, "data", zlib.compress(b'["upper", "text", [], {}]'))  # a method of "text"
    extra = queue.enqueue(PROCESS_BATCH, batch_id="b3", path=str(tmp_path))

    work(settings)

    assert list(tmp_path.iterdir()) == []
    assert sorted(queue.failed_job_registry.get_job_ids()) == sorted([other.id, with_instance.id, extra.id])
    refused = BatchJob.fetch(other.id, connection=client).latest_result()
    assert refused is not None
    assert "RefusedJob" in refused.exc_string


def test_a_job_s_callbacks_are_never_called(
    settings: Settings, client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tmp_path / "callback-ran"
    monkeypatch.setenv("MDSTACK_TEST_MARK", str(mark))
    queue = job_queue(settings, client)
    here = f"{__name__}.record_call"
    queue.enqueue(PROCESS_BATCH, batch_id="none-such", on_success=Callback(here), on_failure=Callback(here))
    queue.enqueue("os.getcwd", on_failure=Callback(here), on_stopped=Callback(here))

    work(settings)

    assert not mark.exists()
    record_call()  # the control: the callback does leave the mark when called
    assert mark.exists()


def test_jobs_from_the_api_are_json_and_run(
    api_url: str,  # noqa: F811  (the fixture)
    settings: Settings,
    client: redis.Redis,
) -> None:
    post(api_url, settings, [tick(1, T0, 100.0, 1.0, "AAA")])
    [job_id] = job_queue(settings, client).get_job_ids()
    assert is_json(client.hget(BatchJob.key_for(job_id), "data") or b"")
    assert batch_id_of(BatchJob.fetch(job_id, connection=client)) == job_id  # the job id is the batch id

    work(settings)

    assert job_queue(settings, client).failed_job_registry.get_job_ids() == []
    assert http().get(f"{api_url}/symbols/AAA").json()["price"] == 100.0


def test_legacy_reader_imports_nothing(tmp_path: Path) -> None:
    legacy = pickle.dumps((PROCESS_BATCH, None, (), {"batch_id": "b9"}), protocol=pickle.HIGHEST_PROTOCOL)
    assert legacy_batch_id(zlib.compress(legacy)) == "b9"
    assert legacy_batch_id(legacy) == "b9"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        evil = pickle.dumps((PROCESS_BATCH, None, (MakeDir(tmp_path / "x"),), {}), protocol=protocol)
        assert legacy_batch_id(evil) is None
    assert legacy_batch_id(pickle.dumps(("os.system", None, ("true",), {}))) is None
    assert legacy_batch_id(b"not a pickle") is None
    assert list(tmp_path.iterdir()) == []


def test_api_start_converts_old_pickled_jobs_and_drops_foreign_ones(
    settings: Settings, client: redis.Redis, tmp_path: Path
) -> None:
    old = Queue(settings.QUEUE_NAME, connection=client)  # what an older mdstack enqueued with
    keys = Keys(settings.KEY_PREFIX)
    client.hset(keys.batch("old-batch"), "items", b'{"tick": []}')
    ours = old.enqueue(PROCESS_BATCH, batch_id="old-batch")
    foreign = planted(client, settings, zlib.compress(pickle.dumps(MakeDir(tmp_path / "x"))))

    assert upgrade_jobs(client, settings) == {"converted": 1, "dropped": 1}

    assert list(tmp_path.iterdir()) == []
    assert is_json(client.hget(ours.key, "data") or b"")
    assert client.exists(BatchJob.key_for(foreign)) == 0
    queue = job_queue(settings, client)
    assert queue.get_job_ids() == [ours.id]
    assert upgrade_jobs(client, settings) == {"converted": 0, "dropped": 0}  # once done, nothing left

    work(settings)

    assert queue.failed_job_registry.get_job_ids() == []
    assert client.exists(keys.batch("old-batch")) == 0  # the converted job ran and took its batch


def test_api_lifespan_upgrades_pickled_jobs(settings: Settings, client: redis.Redis) -> None:
    ours = Queue(settings.QUEUE_NAME, connection=client).enqueue(PROCESS_BATCH, batch_id="at-start")
    assert not is_json(client.hget(ours.key, "data") or b"")

    async def start_and_stop() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            pass

    anyio.run(start_and_stop)

    assert is_json(client.hget(ours.key, "data") or b"")
