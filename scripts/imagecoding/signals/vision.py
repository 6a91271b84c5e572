"""Google Cloud Vision: labels, objects and text per image, through the project's one answer cache.

Opt-in and paid: images are downsized and re-encoded without EXIF before upload, the key comes from
an environment variable and travels in a header (never in a URL or a log), and every answer is cached
by a hash of the request, so a re-run pays for nothing twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

from ..images import DEFAULT_MAX_PIXELS, ImageProblem, upload_jpeg
from ..response_cache import ResponseCache
from ..retries import ServiceConfigError, retry_waits
from .run import chunks, failed_row, rows_table

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("label_scores", pa.list_(pa.float32())),
        ("objects", pa.list_(pa.string())),
        ("text", pa.string()),
        ("summary", pa.string()),
        ("cost_usd", pa.float64()),
        ("cached", pa.bool_()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
MERGE_COLUMNS = ["summary", "text"]
IMAGES_PER_REQUEST = 16  # the API's limit for images sent inline


@dataclass(frozen=True)
class VisionSettings:
    endpoint: str
    api_key_env: str
    features: tuple[str, ...]
    max_results: int
    max_side: int
    price_per_1000: float
    max_concurrency: int
    max_retries: int = 6
    timeout_s: float = 60.0

    @classmethod
    def from_config(cls, vision: dict) -> "VisionSettings":
        fields = [name for name in cls.__dataclass_fields__ if name in vision]
        return cls(**{name: tuple(vision[name]) if name == "features" else vision[name] for name in fields})

    @property
    def cost_per_image(self) -> float:
        return len(self.features) * self.price_per_1000 / 1000

    def key(self, image_id: str) -> str:
        shared = json.dumps([self.endpoint, sorted(self.features), self.max_results, self.max_side], sort_keys=True)
        return hashlib.sha256(f"vision\0{shared}\0{image_id}".encode()).hexdigest()


def api_key(settings: VisionSettings) -> str:
    key = os.environ.get(settings.api_key_env)
    if not key:
        raise ServiceConfigError(
            f"signals.vision.api_key_env: the environment variable {settings.api_key_env} is not set. Export your "
            f"Google Cloud API key (export {settings.api_key_env}=...), or take vision out of ensemble.signals."
        )
    return key


class VisionClient:
    """images:annotate with retries on 429, 5xx and timeouts (the server's Retry-After first)."""

    def __init__(self, settings: VisionSettings, session=None):
        import requests

        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers.update({"X-Goog-Api-Key": api_key(settings), "Content-Type": "application/json"})

    def annotate(self, images: list[bytes]) -> list[dict]:
        import backoff
        import requests

        settings = self.settings
        body = {
            "requests": [
                {
                    "image": {"content": base64.b64encode(jpeg).decode("ascii")},
                    "features": [{"type": feature, "maxResults": settings.max_results} for feature in settings.features],
                }
                for jpeg in images
            ]
        }

        def retryable(exc: Exception) -> bool:
            response = getattr(exc, "response", None)
            return response is None or response.status_code == 429 or response.status_code >= 500

        @backoff.on_exception(
            retry_waits, requests.RequestException, max_tries=settings.max_retries + 1, jitter=None,
            giveup=lambda exc: not retryable(exc), base=0.5, cap=60,
        )
        def post() -> list[dict]:
            response = self.session.post(f"{settings.endpoint}/images:annotate", json=body, timeout=settings.timeout_s)
            if response.status_code in (401, 403):
                raise ServiceConfigError(
                    f"Cloud Vision rejected the key from {settings.api_key_env} ({response.status_code}: "
                    f"{response.text[:200]}). Check the key and that the Vision API is enabled for its project."
                )
            response.raise_for_status()
            return response.json().get("responses", [])

        return post()


def vision_row(image_id: str, answer: dict, cost: float, cached: bool) -> dict:
    labels = answer.get("labelAnnotations") or []
    objects = [o.get("name", "") for o in answer.get("localizedObjectAnnotations") or []]
    texts = answer.get("textAnnotations") or []
    text = (answer.get("fullTextAnnotation") or {}).get("text") or (texts[0].get("description") if texts else "")
    names = [label.get("description", "") for label in labels]
    return {
        "image_id": image_id,
        "labels": names,
        "label_scores": [float(label.get("score", 0.0)) for label in labels],
        "objects": objects,
        "text": (text or "").strip(),
        "summary": ", ".join(dict.fromkeys(names + objects)),
        "cost_usd": cost,
        "cached": cached,
        "status": "ok",
        "error": None,
    }


def vision_tables(
    items: list[tuple[str, str]],
    settings: VisionSettings,
    cache: ResponseCache,
    client: VisionClient | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[pa.Table]:
    """Result tables per request of up to 16 images; cached answers cost nothing, failures are not cached."""
    keys = {image_id: settings.key(image_id) for image_id, _ in items}
    cached = cache.get_many(list(keys.values()))
    if client is None and len(cached) < len(keys):
        client = VisionClient(settings)  # only now: a fully cached run needs no key

    def annotate_chunk(chunk: list[tuple[str, str]]) -> list[dict]:
        rows, sent, payloads = [], [], []
        for image_id, path in chunk:
            entry = cached.get(keys[image_id])
            if entry is not None:
                rows.append(vision_row(image_id, entry["response"], entry["cost_usd"], True))
                continue
            try:
                payloads.append(upload_jpeg(path, settings.max_side, max_pixels))
                sent.append(image_id)
            except ImageProblem as problem:
                rows.append(failed_row(image_id, problem.status, problem.detail))
        if not sent:
            return rows
        try:
            answers = client.annotate(payloads)
        except ServiceConfigError:
            raise
        except Exception as exc:  # retries exhausted: these images' rows, asked again next run
            return rows + [failed_row(image_id, "vision_error", f"{type(exc).__name__}: {exc}") for image_id in sent]
        for image_id, answer in zip(sent, answers + [{}] * (len(sent) - len(answers))):
            if answer.get("error") or not answer:
                detail = (answer.get("error") or {}).get("message", "no answer for this image")
                rows.append(failed_row(image_id, "vision_error", detail))
                continue
            cache.put(keys[image_id], "google-cloud-vision", "vision", image_id, "sync", answer, 0, 0, settings.cost_per_image)
            rows.append(vision_row(image_id, answer, settings.cost_per_image, False))
        return rows

    with ThreadPoolExecutor(max_workers=settings.max_concurrency) as pool:
        for rows in pool.map(annotate_chunk, chunks(items, IMAGES_PER_REQUEST)):
            yield rows_table(rows, SCHEMA)
