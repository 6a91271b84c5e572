"""The report's comparison of methods: agreement matrices per scheme and a gallery of images they disagree on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..consensus import METHODS


def agreement_matrix(agreement: pd.DataFrame, methods: list[str]) -> list[dict]:
    """Rows of a method × method table; each off-diagonal cell holds percent agreement, kappa and n."""
    cells = {}
    for row in agreement.to_dict("records"):
        cell = {
            "percent": None if pd.isna(row["percent"]) else float(row["percent"]),
            "kappa": None if pd.isna(row["kappa"]) else float(row["kappa"]),
            "n": int(row["n"]),
        }
        cells[(row["method_a"], row["method_b"])] = cells[(row["method_b"], row["method_a"])] = cell
    return [{"method": a, "cells": [cells.get((a, b)) if a != b else None for b in methods]} for a in methods]


def consensus_view(scheme: str, table: pd.DataFrame, agreement: pd.DataFrame, sample: int, rng: np.random.Generator) -> dict:
    methods = [c for c in table.columns if c in METHODS]
    split = table[table["split"].fillna(False).astype(bool)]
    chosen = split.iloc[np.sort(rng.choice(len(split), sample, replace=False))] if len(split) > sample else split
    gallery = [
        {"image_id": row["image_id"], "categories": [(m, row[m]) for m in methods if isinstance(row[m], str)]}
        for row in chosen.to_dict("records")
    ]
    compared = table[table["methods"].fillna(0) >= 2]
    return {
        "scheme": scheme,
        "methods": methods,
        "matrix": agreement_matrix(agreement[agreement["scheme"] == scheme], methods),
        "images": len(table),
        "compared": len(compared),
        "unanimous": int((~compared["split"].astype(bool)).sum()),
        "split": len(split),
        "gallery": gallery,
    }


def format_cell(cell: dict | None) -> str:
    if not cell or cell["percent"] is None:
        return "–"
    kappa = "κ –" if cell["kappa"] is None or math.isnan(cell["kappa"]) else f"κ {cell['kappa']:.2f}"
    return f"{cell['percent']:.0f}% · {kappa} · n {cell['n']}"
