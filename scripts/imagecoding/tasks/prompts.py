"""Prompts are the researcher's Jinja2 templates in config/prompts/, rendered strictly."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, StrictUndefined


def render_prompt(template_path: str | Path, **context) -> str:
    """A researcher's Jinja2 prompt; an unknown name in it is an error, not an empty string."""
    env = Environment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    return env.from_string(Path(template_path).read_text(encoding="utf-8")).render(**context).strip()
