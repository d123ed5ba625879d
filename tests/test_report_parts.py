"""Small parts of the report page, without a results folder: the minified style sheet and
script, the unwrapped prose, the compact seed lists and the axis of the score bars."""

from __future__ import annotations

import pytest

from metarl_bench.reporting import report_assets, report_minify
from metarl_bench.reporting.report_html import BAR_CLIP, Domain, seed_list


def test_css_is_minified_but_its_strings_are_kept():
    css = 'a { content: " \\25B2"; font: 14px "Segoe UI", Arial; }\n/* why */\n'
    css += "@media (max-width: 700px) {\n  .x { a: b c; }\n}\n"
    minified = 'a{content:" \\25B2";font:14px "Segoe UI",Arial}@media (max-width:700px){.x{a:b c}}'
    assert report_minify.css(css) == minified
    out = report_minify.css(report_assets.CSS)
    assert "\n" not in out and len(out) < 0.9 * len(report_assets.CSS)
    assert 'content:" \\25B2"' in out and '"Segoe UI"' in out and "th[aria-sort=\"ascending\"]::after" in out


def test_js_is_joined_onto_one_line_or_refused_where_that_would_change_it():
    assert report_minify.js("function f() {\n  return 1;\n}\nf();\n") == "function f() { return 1; } f();"
    assert "\n" not in report_minify.js(report_assets.JS)
    with pytest.raises(ValueError, match="semicolon insertion"):
        report_minify.js("var a = 1\nvar b = 2;\n")
    with pytest.raises(ValueError, match="comment"):
        report_minify.js("var a = 1; // one\nvar b = 2;\n")


def test_prose_loses_its_hard_line_breaks_but_not_its_blocks():
    text = "<ul>\n<li>one\ntwo</li>\n<li>three\n  four</li>\n</ul>\n"
    assert report_minify.prose(text) == "<ul>\n<li>one two</li>\n<li>three four</li>\n</ul>"


def test_seed_lists_are_compact():
    assert seed_list(["0", "1", "2"]) == "0–2"
    assert seed_list([1, 0]) == "0, 1"
    assert seed_list(["9", "0", "1", "2", "5", "7", "8"]) == "0–2, 5, 7–9"


def test_the_axis_is_the_range_of_the_values_given_padded_and_clipped():
    assert Domain.of([91.5, 94.2, 72.5, 96.7]) == Domain(71.0, 98.0)
    assert Domain.of([95.0, 95.5]) == Domain(89.0, 101.0)  # near-equal values: at least 10 points wide
    assert Domain.of([]) == Domain(0.0, 100.0)
    assert Domain.of([300.0, 50.0]) == Domain(50.0 - 8, BAR_CLIP[1])  # a k=50 contestant off the scale
