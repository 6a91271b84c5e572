"""Label Studio both ways: a labeling config and tasks (with each method's prediction) out, its JSON export in.

Formats as Label Studio documents them: the labeling config is XML with one Choices control per
variable over one Image object; a task is {"data": ..., "predictions": [{"model_version", "result"}]};
an export is a list of tasks whose "annotations" hold each coder's "result" and "was_cancelled".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from .variables import CodedVariable, as_code

IMAGE = "image"  # the Image object's name; every control points to it


def labeling_config(variables: list[CodedVariable]) -> str:
    """XML with the image and, per variable, a required single choice among its values."""
    lines = ["<View>", f'  <Image name="{IMAGE}" value="${IMAGE}" zoom="true"/>']
    for variable in variables:
        lines.append(f"  <Header value={quoteattr(variable.name + (': ' + variable.description if variable.description else ''))}/>")
        lines.append(f'  <Choices name={quoteattr(variable.name)} toName="{IMAGE}" choice="single" required="true" showInline="true">')
        lines += [f"    <Choice value={quoteattr(value)}/>" for value in variable.values]
        lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def image_url(absolute: str | Path, images_root: str | Path, document_root: str | Path, url_prefix: str | None) -> str:
    """Where Label Studio loads an image: the URL prefix plus its path under images.root, or local-files serving.

    Label Studio serves a local file only below LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT and only inside a
    Local Files storage of the project, whose path must be a subfolder of that root (never the root itself).
    """
    if url_prefix:
        relative = os.path.relpath(os.path.realpath(absolute), os.path.realpath(images_root))
        return url_prefix.rstrip("/") + "/" + quote(Path(relative).as_posix())
    relative = os.path.relpath(os.path.realpath(absolute), os.path.realpath(document_root))
    if relative.startswith(".."):
        raise ValueError(
            f"{absolute} is not under validation.label_studio.document_root ({document_root}); Label Studio's "
            "local-files serving only reaches files below LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT. Set the document "
            "root to a folder holding every image, or give validation.label_studio.url_prefix."
        )
    return "/data/local-files/?d=" + quote(Path(relative).as_posix())


def default_document_root(images_root: str | Path) -> str:
    """The folder above images.root: Label Studio refuses a Local Files storage at the document root itself."""
    return os.path.dirname(os.path.abspath(images_root))


def prediction(method: str, codes: dict[str, str]) -> dict:
    result = [
        {"from_name": name, "to_name": IMAGE, "type": "choices", "value": {"choices": [value]}}
        for name, value in codes.items()
        if value is not None
    ]
    return {"model_version": method, "result": result}


def tasks(sample: list[dict], predictions: dict[str, dict[str, dict[str, str]]], extra: list[str] = ()) -> list[dict]:
    """sample: dicts with image_id, path and url (and the `extra` keys, kept in the task data, such as the
    image's inclusion probability); predictions: method -> image_id -> variable -> value."""
    out = []
    for item in sample:
        made = [prediction(m, by_image[item["image_id"]]) for m, by_image in predictions.items() if item["image_id"] in by_image]
        data = {IMAGE: item["url"], "image_id": item["image_id"], "path": item["path"]}
        data.update({key: _plain(item[key]) for key in extra})
        out.append({"data": data,
                    "predictions": [p for p in made if p["result"]]})
    return out


def _plain(value):
    """numpy numbers as JSON numbers."""
    return value.item() if hasattr(value, "item") else value


def coder_name(annotation: dict) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or who.get("username") or who.get("id"))
    return str(who) if who is not None else "unknown"


def read_export(path: str | Path) -> tuple[list[dict], dict[str, int]]:
    """Codes from a Label Studio JSON export: (rows of image_id/path, coder, variable, value; counts of what was left out)."""
    try:
        exported = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"validation.annotations: '{path}' is not a Label Studio JSON export ({exc}).") from None
    if not isinstance(exported, list):
        raise ValueError(f"validation.annotations: '{path}' is not a Label Studio JSON export (a list of tasks).")
    rows, skipped = [], {"cancelled or skipped annotations": 0, "tasks without annotations": 0}
    for task in exported:
        data = task.get("data") or {}
        annotations = task.get("annotations") or []
        if not annotations:
            skipped["tasks without annotations"] += 1
        for annotation in annotations:
            if annotation.get("was_cancelled"):
                skipped["cancelled or skipped annotations"] += 1
                continue
            for result in annotation.get("result") or []:
                value = result.get("value") or {}
                choices = value.get("choices")
                if choices is None:
                    continue
                rows.append({
                    "image_id": data.get("image_id"),
                    "path": data.get("path"),
                    "coder": coder_name(annotation),
                    "variable": result.get("from_name"),
                    "value": as_code(choices[0]) if choices else None,
                })
    return rows, skipped
