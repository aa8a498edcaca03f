"""ORM records as arguments and receivers: stored as references, loaded fresh, committed after success."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from dj_daemon.api import Queue
from dj_daemon.errors import EnqueueError
from dj_daemon.worker import Worker
from tests import jobs


@pytest.fixture
def photos(config, store, monkeypatch) -> Session:
    jobs.Base.metadata.create_all(store.engine)
    monkeypatch.setenv("DJ_TEST_PHOTO_URL", config.url)
    engine = create_engine(config.url)  # the application's own engine, not the store's
    session = Session(engine)
    session.add_all([jobs.Photo(id=1, title="cat"), jobs.Photo(id=2, title="dog")])
    session.commit()
    yield session
    session.close()
    engine.dispose()


def test_record_receiver_and_argument(config, store, photos, tmp_path: Path) -> None:
    config = config.replace(session_factory="tests.jobs:photo_session")
    queue = Queue(config, store)
    cat, dog = photos.get(jobs.Photo, 1), photos.get(jobs.Photo, 2)
    job_id = queue.delay(cat).upload(7)
    assert '"__dj_record__":"tests.jobs:Photo","pk":[1]' in store.get(job_id).handler
    side = str(tmp_path / "runs.txt")
    queue.enqueue(jobs.caption, dog, side)
    dog.title = "renamed dog"
    photos.commit()  # the job must see the row as it is when it runs
    stats = Worker(config, store, name="t:1").run(exit_when_empty=True)
    assert (stats.succeeded, stats.failed) == (2, 0)
    photos.expire_all()
    assert photos.get(jobs.Photo, 1).uploaded == "yes:7"  # the worker's session was committed
    assert jobs.runs(side) == ["renamed", "dog"]


def test_deleted_record_fails_the_job_with_a_clear_error(config, store, photos) -> None:
    config = config.replace(session_factory="tests.jobs:photo_session")
    job_id = Queue(config, store).delay(photos.get(jobs.Photo, 2)).upload(1)
    photos.delete(photos.get(jobs.Photo, 2))
    photos.commit()
    Worker(config, store, name="t:1").run(exit_when_empty=True)
    job = store.get(job_id)
    assert job.failed_at is not None
    assert "Photo record with primary key [2] no longer exists" in job.last_error.splitlines()[0]


def test_unsaved_record_is_refused_at_enqueue(config, store, photos) -> None:
    with pytest.raises(EnqueueError, match="no primary key yet"):
        Queue(config, store).delay(jobs.Photo(title="new")).upload(1)


def test_enqueue_in_the_callers_session(config, store, photos) -> None:
    queue = Queue(config, store)
    queue.enqueue(jobs.noop, connection=photos)
    photos.rollback()
    assert store.jobs() == []
    queue.enqueue(jobs.noop, connection=photos)
    photos.commit()
    assert len(store.jobs()) == 1
