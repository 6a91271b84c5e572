"""Request bodies for OpenAI-compatible endpoints: image parts as uploaded (resized, without EXIF) and the answer format."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from pathlib import Path

from ..images import DEFAULT_MAX_PIXELS, ImageProblem, upload_jpeg
from .settings import LLMSettings
from .task import InputUnavailable

DETAIL_SIDES = {"low": 512, "high": 1024, "auto": 1024}
IMAGE_TOKENS_LOW = 85  # OpenAI's fixed cost of a low-detail image


def image_part(jpeg: bytes, detail: str) -> dict:
    encoded = base64.b64encode(jpeg).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{encoded}", "detail": detail}}


@dataclass(frozen=True)
class UploadSettings:
    """How images travel to a multimodal endpoint: the detail asked for and the longest side sent."""

    detail: str = "low"
    max_side: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def side(self) -> int:
        return self.max_side or DETAIL_SIDES[self.detail]

    def part(self, path: str | Path) -> dict:
        """The image as a message part: resized, re-encoded without EXIF (raises ImageProblem)."""
        return image_part(upload_jpeg(path, self.side, self.max_pixels), self.detail)

    def request_part(self, path: str | Path) -> dict:
        """The image part of one request; an image that does not load is that row's status, not the run's end."""
        try:
            return self.part(path)
        except ImageProblem as problem:
            raise InputUnavailable("image_failed", f"{problem.status}: {problem.detail}") from None

    def image_tokens(self) -> float:
        """Prompt tokens of one uploaded image, by OpenAI's tile rule."""
        tiles = math.ceil(self.side / 512) ** 2
        return IMAGE_TOKENS_LOW if self.detail == "low" else IMAGE_TOKENS_LOW + 170 * tiles


def response_format(settings: LLMSettings, schema: dict, name: str) -> dict | None:
    if settings.structured_output == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if settings.structured_output == "json_object":
        return {"type": "json_object"}
    return None  # plain text: the answer is parsed, fenced or not


def request_body(settings: LLMSettings, messages: list[dict], schema: dict, name: str) -> dict:
    body = {"model": settings.model, "messages": messages, **settings.parameters()}
    chosen = response_format(settings, schema, name)
    if chosen:
        body["response_format"] = chosen
    return body
