"""The console's SVG chart builder and its measures (pure functions, no browser)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from detectors import signals as sig
from monitor.console.charts import FULL, SPARK, Marker, Point, Scale, line_chart, value_range
from monitor.console.measures import HEADLINES, measure_for, plot
from monitor.console.series import StepTotals

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the output is well-formed XML


def coords(polyline: ET.Element) -> list[tuple[float, float]]:
    pairs = (p.split(",") for p in polyline.attrib["points"].split())
    return [(float(x), float(y)) for x, y in pairs]


def test_points_span_the_plot_and_higher_values_are_drawn_higher() -> None:
    points = [Point(0, 0.1), Point(50, 0.3), Point(100, 0.2)]
    root = parse(line_chart(points, 0, 100, spec=FULL))
    (line,) = root.findall("s:polyline", NS)
    xy = coords(line)
    assert xy[0][0] == pytest.approx(FULL.left)
    assert xy[-1][0] == pytest.approx(FULL.width - FULL.right)
    assert xy[1][0] == pytest.approx((FULL.left + FULL.width - FULL.right) / 2)
    ys = [y for _, y in xy]
    assert ys[1] < ys[2] < ys[0]  # 0.3 above 0.2 above 0.1 (SVG y grows downwards)
    assert all(FULL.top <= y <= FULL.height - FULL.bottom for y in ys)


def test_the_baseline_is_a_horizontal_line_at_its_value() -> None:
    points = [Point(0, 0.4), Point(60, 0.5)]
    root = parse(line_chart(points, 0, 60, baseline=0.2, spec=SPARK))
    (base,) = root.findall("s:line[@class='baseline']", NS)
    lo, hi = value_range([0.4, 0.5], 0.2)
    expected = Scale(SPARK, 0, 60, lo, hi).y(0.2)
    assert float(base.attrib["y1"]) == float(base.attrib["y2"]) == pytest.approx(expected, abs=0.06)
    assert float(base.attrib["data-value"]) == 0.2
    # the baseline is inside the range even when every value is far above it
    assert SPARK.top <= expected <= SPARK.height - SPARK.bottom


def test_a_gap_in_the_data_breaks_the_line() -> None:
    points = [Point(0, 1), Point(1, 2), Point(2, None), Point(3, 2), Point(4, 3), Point(5, None)]
    root = parse(line_chart(points, 0, 5))
    assert [len(coords(p)) for p in root.findall("s:polyline", NS)] == [2, 2]


def test_markers_sit_at_their_time_and_those_outside_the_range_are_left_out() -> None:
    markers = [
        Marker(25, "edit rate critical since here", "since"),
        Marker(-10, "before the range", "version"),
        Marker(75, "version b first seen", "version"),
    ]
    root = parse(line_chart([Point(0, 1), Point(100, 2)], 0, 100, markers=markers))
    drawn = root.findall("s:line[@data-t]", NS)
    assert [m.attrib["class"] for m in drawn] == ["marker marker-since", "marker marker-version"]
    scale = Scale(FULL, 0, 100, 0, 1)
    assert float(drawn[0].attrib["x1"]) == pytest.approx(scale.x(25), abs=0.06)
    assert drawn[0].find("s:title", NS).text == "edit rate critical since here"  # type: ignore[union-attr]


def test_text_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    svg = line_chart([Point(0, 1)], 0, 1, title=evil, markers=[Marker(0.5, evil, "switch")])
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find("s:title", NS).text == evil  # type: ignore[union-attr]


def test_no_data_says_so_and_draws_no_line() -> None:
    root = parse(line_chart([Point(0, None), Point(1, None)], 0, 1, baseline=0.5))
    assert root.findall("s:polyline", NS) == []
    assert root.find("s:text[@class='empty']", NS).text == "no data"  # type: ignore[union-attr]
    assert len(root.findall("s:line[@class='baseline']", NS)) == 1  # the baseline still shows


def test_a_single_point_is_a_dot() -> None:
    root = parse(line_chart([Point(0, None), Point(1, 0.5), Point(2, None)], 0, 2))
    assert len(root.findall("s:circle[@class='series']", NS)) == 1


def test_value_range_keeps_rates_non_negative_and_spreads_a_flat_line() -> None:
    assert value_range([0.0, 0.01], None)[0] == 0.0
    lo, hi = value_range([3.0, 3.0], None)
    assert lo < 3.0 < hi


def test_measures_turn_step_totals_into_rates_means_costs_and_daily_counts() -> None:
    steps = {
        sig.EDITED: {0: StepTotals(10, 3, 0.0)},
        sig.GROUNDEDNESS: {0: StepTotals(4, 0, 3.2)},
        sig.RUNS: {0: StepTotals(20, 19, 0.0), 600: StepTotals(5, 5, 0.0)},
        sig.SPEND_USD: {0: StepTotals(20, 0, 0.5)},
    }
    by_key = {m.key: m for m in HEADLINES}
    # the range starts mid-step and ends mid-step: each part is measured over its own length
    [p1, p2] = plot(by_key["edit-rate"], steps, 0, 900, 600)
    assert (p1.t, p1.v, p2.v) == (300, 0.3, None)
    assert plot(by_key["groundedness"], steps, 0, 600, 600)[0].v == pytest.approx(0.8)
    assert plot(by_key["cost-per-run"], steps, 0, 600, 600)[0].v == pytest.approx(0.025)
    per_day = plot(by_key["runs-per-day"], steps, 0, 900, 600)
    assert per_day[0].v == pytest.approx(20 * 86_400 / 600)
    assert per_day[1].v == pytest.approx(5 * 86_400 / 300)  # 5 runs in the 300 s so far
    assert per_day[1].t == 750
    # a workflow with no runs in a step ran 0 times then; its rate there is unknown
    assert plot(by_key["runs-per-day"], {}, 0, 600, 600)[0].v == 0
    assert plot(by_key["error-rate"], {}, 0, 600, 600)[0].v is None


def test_other_signals_are_charted_by_their_kind() -> None:
    steps = {
        "action_errors.crm_write": {0: StepTotals(4, 1, 0.0)},
        "latency_ms": {0: StepTotals(2, 0, 900.0)},
        "team_runs.ap": {0: StepTotals(6, 6, 0.0)},
    }
    assert plot(measure_for("action_errors.crm_write"), steps, 0, 60, 60)[0].v == 0.25
    assert plot(measure_for("latency_ms"), steps, 0, 60, 60)[0].v == 450.0
    assert plot(measure_for("team_runs.ap"), steps, 0, 60, 60)[0].v == 6 * 1440
