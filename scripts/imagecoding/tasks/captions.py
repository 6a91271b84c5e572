"""Captions from a multimodal LLM: the `llm` method of signals.captions, one short description per image."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..images import ImageProblem
from ..llm.engine import Engine
from ..llm.messages import IMAGE_TOKENS_LOW, UploadSettings, request_body
from ..llm.request_keys import request_digest, request_key
from ..llm.settings import LLMSettings
from ..llm.task import InputUnavailable, Request
from .prompts import render_prompt
from .run import LLMRun

SCHEMA = {
    "type": "object",
    "properties": {"caption": {"type": "string", "description": "one or two sentences describing the image"}},
    "required": ["caption"],
    "additionalProperties": False,
}


class CaptionTask:
    name = "captions"
    columns = ["text"]
    dtypes: dict[str, str] = {}

    def __init__(self, prompt: str, settings: LLMSettings, upload: UploadSettings):
        self.prompt = prompt
        self.settings = settings
        self.upload = upload
        self.digest = request_digest(settings, {"prompt": prompt, "detail": upload.detail, "max_side": upload.side}, SCHEMA)

    def requests(self, items: list[tuple[str, str]]) -> list[Request]:
        return [Request(request_key(self.digest, image_id), image_id, path) for image_id, path in items]

    def body(self, request: Request) -> dict:
        try:
            image = self.upload.part(request.source)
        except ImageProblem as problem:
            raise InputUnavailable(problem.status, problem.detail) from None
        content = [{"type": "text", "text": self.prompt}, image]
        return request_body(self.settings, [{"role": "user", "content": content}], SCHEMA, "caption")

    def input_problem(self, request: Request) -> InputUnavailable | None:
        return None  # an image that fails to load shows only when its body is built

    def check(self, answer) -> tuple[dict, list[str]]:
        caption = answer.get("caption") if isinstance(answer, dict) else None
        if not isinstance(caption, str) or not caption.strip():
            return {"text": None}, [f"no caption text in the answer: {json.dumps(answer)[:200]}"]
        return {"text": caption.strip()}, []

    def estimated_tokens(self) -> tuple[float, float]:
        return len(self.prompt) / 4 + IMAGE_TOKENS_LOW, 40.0


def captions_run(config: dict, items: list[tuple[str, str]], need_client: bool = True, client=None) -> LLMRun:
    captions = config["signals"]["captions"]
    engine = Engine.from_config(config["llm"], need_client, client)
    upload = UploadSettings(captions["detail"], None, config["images"]["max_pixels"])
    task = CaptionTask(render_prompt(Path(captions["prompt"])), engine.settings, upload)
    return LLMRun(task, task.requests(items), engine)


def captions_from_answers(table: pd.DataFrame) -> pd.DataFrame:
    """The signal's columns (text, status, error) first; tokens and cost stay beside them."""
    first = ["image_id", "text", "status", "error"]
    return table[first + [c for c in table.columns if c not in first]]
