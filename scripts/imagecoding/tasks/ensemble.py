"""The ensemble: a text-only LLM classifies each image into every CLIP scheme from its signals and post text.

The schemes become a codebook (per scheme a categorical `category` and a short `reason`), so the
answer's strict JSON schema and its check are those of frame coding.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from ..llm.engine import Engine
from ..llm.messages import request_body
from ..llm.request_keys import request_digest, request_key
from ..llm.settings import LLMSettings
from ..llm.task import InputUnavailable, Request
from ..schemes import Scheme, load_scheme
from .codebook import Codebook, Group, Variable
from .prompts import BlockPrompt
from .run import LLMRun
from .selection import posts_with_images, select_images

# Per signal: the prompt's names for the signal's fields. None in the prompt means "signal not used".
SIGNAL_FIELDS = {
    "captions": {"caption": "text"},
    "objects": {"objects": "summary", "people": "person_count"},
    "tags": {"tags": "summary"},
    "ocr": {"ocr": "text"},
    "vision": {"vision_labels": "summary", "vision_text": "text"},
}
PROMPT_FIELDS = [name for fields in SIGNAL_FIELDS.values() for name in fields] + ["post_text", "account"]


def scheme_codebook(schemes: list[Scheme], reason_max_length: int) -> Codebook:
    groups = []
    for scheme in schemes:
        values = {category: "; ".join(scheme.phrases_of(category)) for category in scheme.categories}
        groups.append(
            Group(
                scheme.name,
                (
                    Variable(scheme.name, "category", "categorical", f"the category of scheme {scheme.name}", values),
                    Variable(
                        scheme.name, "reason", "string", "one short sentence naming the evidence",
                        max_length=reason_max_length,
                    ),
                ),
            )
        )
    return Codebook("ensemble", tuple(groups))


def _plain(value):
    """numpy scalars and missing values as JSON-friendly Python values."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def image_texts(
    image_ids: list[str],
    signals: dict[str, pd.DataFrame],
    post_images: pd.DataFrame | None = None,
    post_text_column: str | None = None,
    account_column: str | None = None,
) -> dict[str, dict]:
    """Per image the prompt's fields (None where a signal is not used, failed, or no post names the image)
    and the signals that failed for it, with their reasons."""
    texts = {image_id: {**dict.fromkeys(PROMPT_FIELDS), "signal_failures": [], "signals_used": len(signals)} for image_id in image_ids}
    for signal, table in signals.items():
        found = set()
        for record in table.drop_duplicates("image_id").to_dict("records"):
            fields = texts.get(record["image_id"])
            if fields is None:
                continue
            found.add(record["image_id"])
            if record["status"] == "ok":
                fields.update({name: _plain(record[column]) for name, column in SIGNAL_FIELDS[signal].items()})
            else:
                fields["signal_failures"].append(f"{signal}: {record['status']} ({record['error']})")
        for image_id in texts.keys() - found:
            texts[image_id]["signal_failures"].append(f"{signal}: no result")
    if post_images is not None:
        first_posts = post_images.dropna(subset=["image_id"]).drop_duplicates("image_id")
        for record in first_posts.to_dict("records"):
            fields = texts.get(record["image_id"])
            if fields is not None:
                for name, column in (("post_text", post_text_column), ("account", account_column)):
                    if column:
                        fields[name] = _plain(record[column])
    return texts


class SchemeAnswers:
    """The schemes as an answer: per scheme a category and a reason, checked as a codebook and named as in
    clip/<scheme>.parquet (the category under the scheme's own name). The ensemble's and the multimodal LLM's."""

    def __init__(self, schemes: list[Scheme], reason_max_length: int = 200):
        self.codebook = scheme_codebook(schemes, reason_max_length)
        self.schema = self.codebook.json_schema()
        self.rename = {}
        for scheme in schemes:
            self.rename[f"{scheme.name}_category"] = scheme.name
            self.rename[f"{scheme.name}_reason"] = f"{scheme.name}_reason"
        self.columns = list(self.rename.values())
        # What prompts show: each scheme's name and its categories with their phrases.
        self.view = [{"name": s.name, "categories": [(c, s.phrases_of(c)) for c in s.categories]} for s in schemes]

    def check(self, answer) -> tuple[dict, list[str]]:
        values, problems = self.codebook.check_answer(answer)
        return {self.rename[column]: value for column, value in values.items()}, problems

    def answer_length(self) -> float:
        """Characters of a typical answer: half the reason allowance per scheme."""
        return len(self.view) * (self.codebook.groups[0].variables[1].max_length or 200) / 2


class EnsembleTask:
    """One text-only request per image; its key hashes the image's texts, so new signals mean a new question."""

    name = "ensemble"

    def __init__(self, schemes: list[Scheme], prompt: BlockPrompt, settings: LLMSettings, reason_max_length: int = 200):
        self.schemes = schemes
        self.prompt = prompt
        self.settings = settings
        self.answers = SchemeAnswers(schemes, reason_max_length)
        self.schema = self.answers.schema
        self.columns = self.answers.columns
        self.dtypes: dict[str, str] = {}
        self.instructions = prompt.render("instructions", schemes=self.answers.view)
        self.digest = request_digest(settings, {"instructions": self.instructions, "template": prompt.path.read_text()}, self.schema)

    def requests(self, texts: dict[str, dict]) -> list[Request]:
        requests = []
        for image_id, source in texts.items():
            content = hashlib.sha256(json.dumps(source, sort_keys=True, default=str).encode()).hexdigest()
            requests.append(Request(request_key(self.digest, f"{image_id}\0{content}"), image_id, source))
        return requests

    def input_problem(self, request: Request) -> InputUnavailable | None:
        """An image every signal failed on has nothing to classify from: it is a row, not a request."""
        source = request.source
        if source["signals_used"] and len(source["signal_failures"]) >= source["signals_used"]:
            return InputUnavailable("signals_failed", "every signal failed: " + "; ".join(source["signal_failures"]))
        return None

    def body(self, request: Request) -> dict:
        source = request.source
        problem = self.input_problem(request)
        if problem:
            raise problem
        data = self.prompt.render("image", **{name: source[name] for name in PROMPT_FIELDS})
        messages = [{"role": "system", "content": self.instructions}, {"role": "user", "content": data}]
        return request_body(self.settings, messages, self.schema, "ensemble")

    def check(self, answer) -> tuple[dict, list[str]]:
        return self.answers.check(answer)

    def estimated_tokens(self) -> tuple[float, float]:
        schema = len(json.dumps(self.schema)) if self.settings.structured_output == "json_schema" else 0
        signals = 600  # characters of caption, objects, tags and OCR text of a typical post image
        return (len(self.instructions) + schema + signals) / 4, min(self.settings.max_tokens, self.answers.answer_length() / 3 + 20)


def ensemble_run(
    config: dict,
    manifest: pd.DataFrame,
    signals: dict[str, pd.DataFrame],
    posts: pd.DataFrame | None = None,
    need_client: bool = True,
    client=None,
) -> LLMRun:
    """The ensemble as configured: selected images, their signals and post text, the scheme task, the engine."""
    ensemble = config["ensemble"]
    engine = Engine.from_config(config["llm"], need_client, client)
    schemes = [load_scheme(name, path) for name, path in sorted(config["clip"]["schemes"].items())]
    prompt = BlockPrompt(ensemble["prompt"], ("instructions", "image"), "ensemble.prompt", ensemble["max_text_chars"])
    task = EnsembleTask(schemes, prompt, engine.settings, ensemble["reason_max_length"])
    post_images = posts_with_images(config, manifest, posts)
    images = select_images(
        manifest, post_images, ensemble.get("filters"), ensemble.get("sample"), ensemble.get("seed", 1), key="ensemble"
    )
    texts = image_texts(
        list(images["image_id"]), signals, post_images, ensemble.get("post_text_column"),
        config["posts"].get("account_column") if ensemble.get("include_account") else None,
    )
    return LLMRun(task, task.requests(texts), engine)


def scheme_answers_for_merge(table: pd.DataFrame, schemes: list[str], method: str = "ensemble") -> pd.DataFrame:
    """Categories and reasons prefixed with the method (ensemble_, multimodal_), plus its status, error and cost."""
    columns = ["image_id", *[c for s in schemes for c in (s, f"{s}_reason")], "status", "error", "cost_usd"]
    return table[columns].rename(columns={c: f"{method}_{c}" for c in columns if c != "image_id"})
