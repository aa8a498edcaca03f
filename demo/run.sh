#!/usr/bin/env bash
# `make demo`: an SQLite queue, sample jobs, a worker, and the result.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf out && mkdir -p out/sentinels
export DJ_CONFIG="$PWD/demo.conf" PYTHONPATH="$PWD" FLEAS_FILE="$PWD/out/fleas.txt" DJ_LOG_LEVEL=INFO

delayed_job db init
python enqueue_samples.py
echo "--- the daemon: delayed_job run -n 2 (systemd runs the same command)"
delayed_job run -n 2 &
daemon=$!
for _ in $(seq 1 150); do
  [ -f out/fleas.txt ] && [ "$(wc -l < out/fleas.txt)" -ge 9 ] && break
  sleep 0.1
done
sleep 0.3
echo "--- long_jobs status (while the daemon runs)"
long_jobs status
kill -TERM "$daemon"
wait "$daemon"
echo "--- daemon stopped cleanly (exit $?)"
echo "--- out/fleas.txt"
cat out/fleas.txt
echo "--- the queue now"
delayed_job jobs list
lines=$(wc -l < out/fleas.txt)
if [ "$lines" -eq 9 ]; then
  echo "demo: all 9 due sample jobs performed; the one for tomorrow is still queued"
else
  echo "demo: expected 9 lines in out/fleas.txt, found $lines" >&2
  exit 1
fi
