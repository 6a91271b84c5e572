"""The report's charts as static SVG: Vega-Lite specs from altair, rendered by vl-convert (no browser, no network)."""

from __future__ import annotations


def chart_svg(chart, label: str) -> str:
    """An altair chart as inline SVG, announced to screen readers as an image with `label`."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(chart.to_json())
    text = str(label).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{text}" ', 1)
