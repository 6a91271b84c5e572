"""Prompts are the researcher's Jinja2 templates in config/prompts/, rendered strictly, untrusted text fenced."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, StrictUndefined, TemplateError

MARKERS = re.compile(r"<{3,}|>{3,}")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class PromptError(ValueError):
    """A prompt template that cannot be used; the message names the file and the fix."""


def data(text, max_chars: int | None = None) -> str:
    """Untrusted text made safe to place between <<< >>> markers: no markers, no control characters, cut to length."""
    if text is None:
        return ""
    text = CONTROL.sub(" ", MARKERS.sub(" ", str(text))).strip()
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


def environment(max_text_chars: int | None = None) -> Environment:
    env = Environment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.filters["data"] = lambda text: data(text, max_text_chars)
    return env


def render_prompt(template_path: str | Path, **context) -> str:
    """A researcher's Jinja2 prompt; an unknown name in it is an error, not an empty string."""
    return environment().from_string(Path(template_path).read_text(encoding="utf-8")).render(**context).strip()


class BlockPrompt:
    """A template whose named blocks are rendered apart: instructions once per run, the image part per image."""

    def __init__(self, template_path: str | Path, blocks: tuple[str, ...], key: str, max_text_chars: int | None = None):
        self.path = Path(template_path)
        try:
            self.template = environment(max_text_chars).from_string(self.path.read_text(encoding="utf-8"))
        except (OSError, TemplateError) as exc:
            raise PromptError(f"{key}: cannot read the template '{self.path}': {exc}") from None
        missing = [name for name in blocks if name not in self.template.blocks]
        if missing:
            raise PromptError(
                f"{key}: the template '{self.path}' has no block {', '.join(missing)}; it needs "
                + " and ".join("{% block " + name + " %}...{% endblock %}" for name in blocks)
                + " (see config/prompts/ensemble.j2)."
            )

    def render(self, block: str, **context) -> str:
        return "".join(self.template.blocks[block](self.template.new_context(context))).strip()
