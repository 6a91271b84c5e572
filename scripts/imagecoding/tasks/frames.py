"""Frame coding: each image and a codebook prompt to a multimodal LLM; answers checked against the codebook."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..images import file_sha256, upload_jpeg
from ..llm.engine import Engine
from ..llm.messages import DETAIL_SIDES, UploadSettings, image_part, request_body
from ..llm.request_keys import request_digest
from ..llm.settings import LLMSettings
from ..llm.task import InputUnavailable, Request
from .codebook import Codebook, load_codebook
from .prompts import render_prompt
from .run import LLMRun
from .selection import image_requests, posts_with_images, select_images

class FrameTask:
    """Requests for one codebook, prompt and upload setting; the cache key needs no image bytes."""

    name = "frames"

    def __init__(self, codebook: Codebook, prompt: str, settings: LLMSettings, upload: UploadSettings):
        self.codebook = codebook
        self.prompt = prompt
        self.settings = settings
        self.upload = upload
        self.schema = codebook.json_schema()
        self.columns = codebook.columns
        self.dtypes = codebook.dtypes
        self.examples = [(v, value, path, file_sha256(path)) for v, value, path in codebook.example_images()]
        # Few-shot images are the same in every request: encode them once.
        self.example_parts: list[dict] = []
        for variable, value, path, _ in self.examples:
            self.example_parts.append({"type": "text", "text": f"Example of {variable.group}.{variable.name} = {value}:"})
            self.example_parts.append(image_part(upload_jpeg(path, DETAIL_SIDES["low"]), "low"))
        shared = {
            "prompt": prompt,
            "detail": upload.detail,
            "max_side": upload.side,
            "examples": [(v.column, value, sha) for v, value, _, sha in self.examples],
        }
        self.digest = request_digest(settings, shared, self.schema)

    def requests(self, images: pd.DataFrame, root: str | Path) -> list[Request]:
        return image_requests(self.digest, images, root)

    def body(self, request: Request) -> dict:
        content: list[dict] = [{"type": "text", "text": self.prompt}, *self.example_parts]
        content.append({"type": "text", "text": "The image to code:"})
        content.append(self.upload.request_part(request.source))
        return request_body(self.settings, [{"role": "user", "content": content}], self.schema, self.codebook.name)

    def input_problem(self, request: Request) -> InputUnavailable | None:
        return None  # an image that fails to load shows only when its body is built

    def check(self, answer) -> tuple[dict, list[str]]:
        return self.codebook.check_answer(answer)

    def estimated_tokens(self) -> tuple[float, float]:
        text = len(self.prompt) + (len(json.dumps(self.schema)) if self.settings.structured_output == "json_schema" else 0)
        images = 1 + len(self.examples)
        image_tokens = self.upload.image_tokens()
        # an answer of typical length: the first value of each categorical variable, a short token otherwise
        answer = {g.name: {v.name: next(iter(v.values), 0) for v in g.variables} for g in self.codebook.groups}
        return text / 4 + images * image_tokens, min(self.settings.max_tokens, len(json.dumps(answer)) / 3)


def frames_run(
    config: dict, manifest: pd.DataFrame, posts: pd.DataFrame | None = None, need_client: bool = True, client=None
) -> LLMRun:
    """Frame coding as configured: the selected images, the codebook task, the engine."""
    frames = config["frames"]
    engine = Engine.from_config(config["llm"], need_client, client)
    codebook = load_codebook(frames["codebook"])
    prompt = render_prompt(frames["prompt"], codebook=codebook)
    upload = UploadSettings(frames["detail"], frames.get("max_side"), config["images"]["max_pixels"])
    task = FrameTask(codebook, prompt, engine.settings, upload)
    images = select_images(
        manifest, posts_with_images(config, manifest, posts), frames.get("filters"), frames.get("sample"),
        frames.get("seed", 1), key="frames",
    )
    return LLMRun(task, task.requests(images, config["images"]["root"]), engine)


def frames_for_merge(table: pd.DataFrame) -> pd.DataFrame:
    """The codes with frames_-prefixed status, error and cost; raw answers and keys stay in frames.parquet."""
    dropped = ["raw", "request_key", "model", "prompt_tokens", "completion_tokens", "cached"]
    renamed = {"status": "frames_status", "error": "frames_error", "cost_usd": "frames_cost_usd",
               "reused_from": "frames_reused_from"}
    return table.drop(columns=dropped).rename(columns=renamed)
