"""Finding the JSON object in a model's answer, whatever the endpoint wrapped around it."""

from __future__ import annotations

import json
import re


class AnswerNotJSON(ValueError):
    """The model's text holds no JSON object."""


FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def parse_answer(text: str):
    """The JSON object in a model's text: plain, fenced in ```json, or the outermost braces."""
    if text is None:
        raise AnswerNotJSON("the answer is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for candidate in [m.group(1) for m in FENCED.finditer(text)] + [text[text.find("{") : text.rfind("}") + 1]]:
        if candidate:
            try:
                return json.loads(candidate)
            except json.JSONDecodeError:
                continue
    raise AnswerNotJSON(f"no JSON object in the answer: {text[:200]!r}")
