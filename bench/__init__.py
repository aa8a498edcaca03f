"""``make bench``: dj-daemon's throughput, latency and footprint on SQLite and MariaDB.

``python -m bench`` (or ``make bench``; ``make bench BENCH_ARGS=--quick`` for
a short run) measures, each figure the median of at least three runs:

a. enqueue: ``Queue.enqueue`` one at a time, ``Queue.enqueue_many``, and a
   raw INSERT-and-commit loop of the same row shape as the reference;
b. drain: the real daemon (``delayed_job run -n K``) emptying a queue of
   no-op jobs, every run verified from the jobs' side effects;
c. pickup latency of an idle daemon, and its query rate on MariaDB;
d. backlog: drain throughput with 1,000,000 jobs queued against 10,000, and
   the EXPLAIN of the reservation query (MariaDB only);
e. a worker's resident memory after many jobs;
f. the ceiling: the same drain by a minimal raw-SQL loop;
g. stored rows: poll, reservation, counts, ``long_jobs status`` and pickup with 0, 100k
   and 1M rows for tomorrow, 1M failed, and 1M of each (``stored_rows``);
h. start-up: from the exec of ``run -n 2`` to the start of a job already due (``startup``).

The drain runs at ``-n 1/2/4/8``. It prints a table with the targets, writes
``bench/results/latest.json``, and draws the stored-row scaling and the drain
curve as PNG charts beside it (``charts``; matplotlib, the ``bench`` extra).
See ``docs/performance.md``.
"""
