"""The bench's charts: drawn with the real matplotlib from results shaped as ``python -m bench``
writes them, saved beside the JSON as PNG files; a section that did not run draws nothing."""
from __future__ import annotations

from pathlib import Path

from bench import charts

PNG = b"\x89PNG\r\n\x1a\n"


def stored_case(scale: float) -> dict[str, float]:
    return {"poll_ms": 0.2 * scale, "reserve_ms": 0.3 * scale, "counts_ms": 0.5 * scale,
            "queue_depths_ms": 0.4 * scale, "status_ms": 3.0 * scale, "pickup_median_ms": 6.0}


def drain(*rates: float) -> dict[str, object]:
    return {f"n{n}": {"jobs_per_s": rate, "runs": [{"jobs_per_s": rate * 0.9}, {"jobs_per_s": rate}]}
            for n, rate in zip((1, 2, 4, 8), rates)}


def test_both_charts_are_drawn_beside_the_results(tmp_path: Path) -> None:
    stored = {"future_0": stored_case(1), "future_100000": stored_case(1.5), "failed_100000": stored_case(2),
              "both_100000": stored_case(2), "largest": {**stored_case(2), "rows": 200_000}}
    results = {"sqlite": {"stored_rows": stored, "drain": drain(9000, 12000, 11000, 10000),
                          "ceiling": {"jobs_per_s": 30000}},
               "mariadb": {"stored_rows": stored, "drain": {**drain(5000, 8000, 7500, 7000), "round_trips": {}}}}
    drawn = charts.draw(results, tmp_path / "run.json")
    assert drawn == [tmp_path / "run-stored-rows.png", tmp_path / "run-drain-curve.png"]
    for path in drawn:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 10_000


def test_sections_not_run_draw_nothing(tmp_path: Path) -> None:
    assert charts.draw({"sqlite": {"enqueue": {}}}, tmp_path / "run.json") == []
    assert list(tmp_path.iterdir()) == []


def test_case_labels() -> None:
    assert [charts._case_label(k) for k in ("future_0", "future_100000", "failed_1000000", "both_1000000")] == [
        "empty", "100k later", "1M failed", "1M later\n+ 1M failed"]
