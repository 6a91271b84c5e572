"""The report's signals and ensemble sections, and the signals shown on every sample card."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from ..llm.task import CODED
from .answers import answers_view

NOTE_CHARS = 160  # longer texts are cut on the cards; merged.csv has them whole


def _short(text) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1] + "…"


def image_notes(merged: pd.DataFrame, schemes: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Per image the signals and ensemble answers worth a line on a sample card, as (label, text).

    They are untrusted text (OCR, model answers): the template escapes them like everything else.
    """
    fields = [("captions_text", "caption"), ("objects_summary", "objects"), ("tags_summary", "tags"),
              ("ocr_text", "text"), ("vision_summary", "Cloud Vision")]
    fields += [(f"learned_{scheme}", f"learned {scheme}") for scheme in schemes]
    fields += [(f"ensemble_{scheme}", f"ensemble {scheme}") for scheme in schemes]
    present = [(column, label) for column, label in fields if column in merged.columns]
    if not present or "image_id" not in merged.columns:
        return {}
    notes: dict[str, list[tuple[str, str]]] = {}
    for record in merged.dropna(subset=["image_id"]).drop_duplicates("image_id").to_dict("records"):
        lines = []
        for column, label in present:
            value = record.get(column)
            if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
                continue
            if column.startswith("learned_") and record.get(f"{column}_prob") == record.get(f"{column}_prob"):
                held_out = ", out of fold" if record.get(f"{column}_out_of_fold") is True else ""
                value = f"{value} ({record[f'{column}_prob']:.0f}%{held_out})"
            if column.startswith("ensemble_") and record.get(f"{column}_reason"):
                value = f"{value}: {record[f'{column}_reason']}"
            lines.append((label, _short(value)))
        if lines:
            notes[record["image_id"]] = lines
    return notes


def _top(lists, n: int = 10) -> list[tuple[str, int]]:
    counts = Counter(item for items in lists if items is not None for item in items)
    return counts.most_common(n)


def signals_view(signals: dict[str, pd.DataFrame]) -> list[dict]:
    """Per signal: how many images it read and failed, and what it found most often."""
    views = []
    for name, table in signals.items():
        ok = table[table["status"] == "ok"]
        facts: list[tuple[str, str]] = []
        top: list[tuple[str, int]] = []
        if name == "ocr" and len(ok):
            with_text = ok[ok["words"] > 0]
            facts.append(("images with text", f"{len(with_text)} of {len(ok)}"))
            if len(with_text):
                facts.append(("median words where there is text", f"{with_text['words'].median():.0f}"))
                facts.append(("mean word confidence", f"{with_text['confidence'].mean():.0f} %"))
        elif name == "objects" and len(ok):
            facts.append(("images showing people", f"{int((ok['person_count'] > 0).sum())} of {len(ok)}"))
            facts.append(("images showing 5 or more people", str(int((ok["person_count"] >= 5).sum()))))
            top = _top(ok["labels"])
        elif name == "tags" and len(ok):
            top = _top(ok["tags"])
        elif name == "captions" and len(ok):
            facts.append(("median caption length (words)", f"{ok['text'].str.split().str.len().median():.0f}"))
        elif name == "vision" and len(ok):
            facts.append(("cost of all answers", f"${table['cost_usd'].fillna(0).sum():.4f}"))
            top = _top(ok["labels"])
        views.append(
            {
                "name": name,
                "images": len(table),
                "status_counts": {str(k): int(v) for k, v in table["status"].value_counts().items()},
                "facts": facts,
                "top": top,
            }
        )
    return views


def ensemble_view(table: pd.DataFrame, schemes: dict[str, list[str]], paths: dict[str, str], max_failures: int) -> dict:
    """The ensemble's categories per scheme (with counts), its unusable answers, and its cost."""
    answered = table[table["status"].isin(CODED)]
    distributions = []
    for scheme, categories in schemes.items():
        counts = answered[scheme].value_counts()
        total = int(counts.sum())
        distributions.append(
            {
                "scheme": scheme,
                "rows": [
                    {"category": c, "count": int(counts.get(c, 0)), "share": 100.0 * counts.get(c, 0) / total if total else 0.0}
                    for c in categories
                ],
            }
        )
    return {"distributions": distributions, **answers_view(table, paths, max_failures)}
