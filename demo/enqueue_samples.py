"""Enqueue the demo's sample jobs, each way the API offers."""
from datetime import timedelta

import dj_daemon
import fleas

for animal in ("cat", "dog", "rat"):
    fleas.has_fleas.delay(animal)                                   # @job ... .delay()
dj_daemon.enqueue(fleas.has_fleas, "bird", priority=-1)            # enqueue(target, *args)
dj_daemon.enqueue(fleas.Newsletter("hello", ["ann@example.org"]))  # a perform-object
dj_daemon.enqueue_many(fleas.has_fleas.prepare(a) for a in ("cow", "pig"))  # one multi-row INSERT
for dataset_id in (101, 102):
    fleas.copy_to_zenodo.delay(dataset_id)                         # tracked: its state is kept
dj_daemon.enqueue(fleas.has_fleas, "unicorn", run_at=timedelta(days=1))  # tomorrow: stays queued
print("enqueued 10 sample jobs (one of them for tomorrow)")
