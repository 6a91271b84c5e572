"""Scheme classification by a multimodal LLM: the model sees the image and answers one category per scheme.

The categories are the schemes' own, described by their phrases through the researcher's Jinja2 prompt;
the answer's strict JSON schema and its check are the ensemble's (SchemeAnswers), so its table has the
columns of clip/<scheme>.parquet's categories and every LLM step's status, cost and cache columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..llm.engine import Engine
from ..llm.messages import UploadSettings, request_body
from ..llm.request_keys import request_digest
from ..llm.settings import LLMSettings
from ..llm.task import InputUnavailable, Request
from ..schemes import Scheme, load_scheme
from .ensemble import SchemeAnswers
from .prompts import render_prompt
from .run import LLMRun
from .selection import image_requests, posts_with_images, select_images


class MultimodalTask:
    """One request per image: the rendered prompt, then the image; the key needs no image bytes (its hash)."""

    name = "multimodal"

    def __init__(self, schemes: list[Scheme], prompt_path: str | Path, settings: LLMSettings, upload: UploadSettings,
                 reason_max_length: int = 200):
        self.answers = SchemeAnswers(schemes, reason_max_length)
        self.schema = self.answers.schema
        self.columns = self.answers.columns
        self.dtypes: dict[str, str] = {}
        self.settings = settings
        self.upload = upload
        self.prompt = render_prompt(prompt_path, schemes=self.answers.view)
        shared = {"prompt": self.prompt, "detail": upload.detail, "max_side": upload.side}
        self.digest = request_digest(settings, shared, self.schema)

    def requests(self, images: pd.DataFrame, root: str | Path) -> list[Request]:
        return image_requests(self.digest, images, root)

    def body(self, request: Request) -> dict:
        content = [{"type": "text", "text": self.prompt}, {"type": "text", "text": "The image to classify:"},
                   self.upload.request_part(request.source)]
        return request_body(self.settings, [{"role": "user", "content": content}], self.schema, "multimodal")

    def input_problem(self, request: Request) -> InputUnavailable | None:
        return None  # an image that fails to load shows only when its body is built

    def check(self, answer) -> tuple[dict, list[str]]:
        return self.answers.check(answer)

    def estimated_tokens(self) -> tuple[float, float]:
        schema = len(json.dumps(self.schema)) if self.settings.structured_output == "json_schema" else 0
        prompt = (len(self.prompt) + schema) / 4 + self.upload.image_tokens()
        return prompt, min(self.settings.max_tokens, self.answers.answer_length() / 3 + 20)


def multimodal_run(config: dict, manifest: pd.DataFrame, posts: pd.DataFrame | None = None, need_client: bool = True,
                   client=None) -> LLMRun:
    """The task as configured (multimodal, clip.schemes, images, posts): every selected image, the engine."""
    settings = config["multimodal"]
    engine = Engine.from_config(config["llm"], need_client, client)
    schemes = [load_scheme(name, path) for name, path in sorted(config["clip"]["schemes"].items())]
    upload = UploadSettings(settings["detail"], settings.get("max_side"), config["images"]["max_pixels"])
    task = MultimodalTask(schemes, settings["prompt"], engine.settings, upload, settings["reason_max_length"])
    images = select_images(
        manifest, posts_with_images(config, manifest, posts), settings.get("filters"), settings.get("sample"),
        settings.get("seed", 1), key="multimodal",
    )
    return LLMRun(task, task.requests(images, config["images"]["root"]), engine)
