"""The bench's figures as PNG charts, saved beside its JSON results: readers would rather look at a
curve than a table.

- ``<stem>-stored-rows.png``: per backend, what the idle poll, a reservation with nothing due,
  the queue counts, ``long_jobs status`` and the pickup of one due job cost at each stored-row
  case (0, 100k, 1M rows for tomorrow, 1M failed, both), on a log scale, with the issue's
  bounds (5 ms for the poll, 50 ms for the counts) drawn as lines;
- ``<stem>-drain-curve.png``: drain jobs/s against the number of workers (``-n 1/2/4/8``) per
  backend, each run a dot and the median a line, the raw ceiling dashed.

matplotlib is the ``bench`` extra (``make bench`` installs it), imported only here, with its
non-interactive back end.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

#: The stored-row figures drawn, with their label and the bound the issue sets (None: none).
STORED_FIGURES = (("poll_ms", "idle poll", 5.0), ("reserve_ms", "reserve, nothing due", None),
                  ("counts_ms", "Store.counts", 50.0), ("queue_depths_ms", "queue_depths (STATUS=)", 50.0),
                  ("status_ms", "long_jobs status", None), ("pickup_median_ms", "pickup median", None))
COLOURS = {"sqlite": "tab:blue", "mariadb": "tab:orange", "postgresql": "tab:green"}


class ChartError(Exception):
    """The charts could not be drawn (matplotlib missing): one line saying what to do."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ChartError("matplotlib is not installed: `make bench` installs it, or "
                         "`pip install -e '.[bench]'`") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def draw(results: dict[str, dict[str, Any]], output: Path) -> list[Path]:
    """Draw the charts the results have data for, beside ``output``; returns their paths."""
    drawn = []
    stored = {name: res["stored_rows"] for name, res in results.items() if res.get("stored_rows")}
    if stored:
        drawn.append(_stored_rows(stored, output.with_name(f"{output.stem}-stored-rows.png")))
    curves = {name: res for name, res in results.items() if _curve(res)}
    if curves:
        drawn.append(_drain_curve(curves, output.with_name(f"{output.stem}-drain-curve.png")))
    return drawn


def _cases(stored: dict[str, Any]) -> list[str]:
    """The case keys in the order measured (``largest`` repeats the last one)."""
    return [key for key in stored if key != "largest" and isinstance(stored[key], dict)]


def _case_label(key: str) -> str:
    kind, rows = key.split("_", 1)
    n = int(rows)
    size = f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)
    return "empty" if n == 0 else {"future": f"{size} later", "failed": f"{size} failed",
                                   "both": f"{size} later\n+ {size} failed"}.get(kind, key)


def _stored_rows(stored: dict[str, dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    for ax, (key, label, bound) in zip(axes.flat, STORED_FIGURES):
        for backend, cases in stored.items():
            names = _cases(cases)
            values = [cases[name].get(key) for name in names]
            points = [(i, v) for i, v in enumerate(values) if v is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=backend, color=COLOURS.get(backend))
            ax.set_xticks(range(len(names)), [_case_label(name) for name in names], fontsize=8)
        if bound is not None:
            ax.axhline(bound, color="red", linestyle=":", linewidth=1, label=f"bound {bound:g} ms")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plt.FormatStrFormatter("%g"))  # 0.5, 20: not 5 x 10^-1
        ax.yaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_title(label)
        ax.set_ylabel("ms (median)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle("Stored rows: cost per operation by rows stored")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _curve(results: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The drain section's runs per worker count, in order of workers."""
    drain = results.get("drain") or {}
    found = [(int(key[1:]), value) for key, value in drain.items()
             if key.startswith("n") and key[1:].isdigit() and isinstance(value, dict) and value.get("jobs_per_s")]
    return sorted(found, key=lambda pair: pair[0])


def _drain_curve(results: dict[str, dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 5.5), constrained_layout=True)
    for backend, res in results.items():
        curve, colour = _curve(res), COLOURS.get(backend)
        ax.plot([n for n, _ in curve], [value["jobs_per_s"] for _, value in curve], marker="o", color=colour,
                label=f"{backend} drain (median)")
        dots = [(n, run["jobs_per_s"]) for n, value in curve for run in value.get("runs", []) if run.get("jobs_per_s")]
        if dots:
            ax.scatter(*zip(*dots), color=colour, alpha=0.35, s=14)
        ceiling = (res.get("ceiling") or {}).get("jobs_per_s")
        if ceiling:
            ax.axhline(ceiling, color=colour, linestyle="--", linewidth=1, label=f"{backend} raw ceiling")
    workers = sorted({n for res in results.values() for n, _ in _curve(res)})
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, [str(n) for n in workers])
    ax.set_xlabel("workers (delayed_job run -n)")
    ax.set_ylabel("jobs/s")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Drain throughput by worker count")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
