"""Summaries of samples: medians and percentiles, nothing fancier."""

import statistics


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank on the sorted samples."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(samples: list[float]) -> dict:
    """n, median, p99, mean, min, max of the samples (in the samples' unit)."""
    if not samples:
        return {"n": 0}
    return {
        "n": len(samples),
        "p50": statistics.median(samples),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples),
        "min": min(samples),
        "max": max(samples),
    }


def median(samples: list[float]) -> float | None:
    return statistics.median(samples) if samples else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
