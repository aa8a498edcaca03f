"""Turn the fault suite's figures (``$DJ_FAULTS_REPORT``, one JSON object per line) into a Markdown table.

``make reliability`` runs the suite with the report file set and prints this table,
which docs/reliability.md quotes.
"""
from __future__ import annotations

import json
import sys

COLUMNS = ("experiment", "dialect", "enqueued", "performed", "doubled", "lost", "finished_reruns",
           "cut_mid_job_reruns", "recover_s")


def table(lines: list[str]) -> str:
    rows = [json.loads(line) for line in lines if line.strip()]
    out = ["| " + " | ".join(COLUMNS) + " | notes |", "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        notes = ", ".join(f"{k}={v}" for k, v in row.items() if k not in COLUMNS)
        out.append("| " + " | ".join("-" if row.get(c) is None else str(row.get(c)) for c in COLUMNS)
                   + f" | {notes} |")
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        print(table(source.readlines()))
