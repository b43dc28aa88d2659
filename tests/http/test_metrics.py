"""Metrics of several workers merged into the service's (enforcement/http/metrics.py): counts
add up, a gauge takes the worst worker's value, a label one worker lacks still shows."""

from __future__ import annotations

from enforcement.http.metrics import Metrics, merge, render


def _worker(revision: int, lag: float, spooled: int, verdicts: dict[str, int]) -> Metrics:
    m = Metrics()
    m.gauge("varco_index_revision", "rev", lambda: revision, "min")
    m.gauge("varco_index_freshness_lag_seconds", "lag", lambda: lag)
    m.gauge("varco_transits_spooled_total", "spooled", lambda: spooled, "sum")
    for reason, n in verdicts.items():
        m.verdicts["pending", reason] = n
    m.latency["/v1/transits"].observe(0.002)
    return m


def test_merge_adds_counts_and_keeps_the_worst_gauge() -> None:
    a = _worker(10, 0.5, 3, {"no_permit": 2})
    b = _worker(12, 4.0, 4, {"no_permit": 5, "expired": 1})
    text = render(merge([a.families(), b.families()]))
    lines = set(text.splitlines())
    assert {
        "varco_workers 2",
        "varco_index_revision 10",
        "varco_index_freshness_lag_seconds 4",
        "varco_transits_spooled_total 7",
        'varco_transits_total{verdict="pending",reason="no_permit"} 7',
        'varco_transits_total{verdict="pending",reason="expired"} 1',
        'varco_http_request_seconds_bucket{route="/v1/transits",le="0.0025"} 2',
        'varco_http_request_seconds_count{route="/v1/transits"} 2',
        'varco_http_request_seconds_sum{route="/v1/transits"} 0.004',
    } <= lines, text
    assert text.count("# TYPE varco_transits_total counter") == 1
    # One process renders as it always did, its own values.
    assert "varco_index_revision 12\n" in b.render() and "varco_workers 1\n" in b.render()
