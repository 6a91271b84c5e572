"""Human codes in: Label Studio exports, CSV coding sheets and the report's right/wrong CSV, checked and counted.

Codes that do not fit (an unknown image, a value outside the scheme or codebook, a second judgement
by the same coder) are counted in the import report, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..posts import delimiter
from .labelstudio import read_export
from .variables import CodedVariable, as_code

CODE_COLUMNS = ["image_id", "coder", "variable", "value"]


def read_sheet(path: Path, variables: list[CodedVariable], check_coder: str) -> tuple[list[dict], dict[str, int]]:
    """A CSV: long (variable, value), wide (a column per variable), or check.html's right/wrong export."""
    table = pd.read_csv(path, sep=delimiter(path), dtype=str, keep_default_na=False)
    columns = set(table.columns)
    rows, notes = [], {}
    if {"judgement", "category", "scheme"} <= columns:  # check.html: a 'right' makes the prediction this coder's code
        judged = table[table["judgement"].isin(["right", "wrong"])]
        notes["right/wrong judgements 'skip' or empty"] = int(len(table) - len(judged))
        notes["judged wrong (no code: the right category is unknown)"] = int((judged["judgement"] == "wrong").sum())
        for row in judged[judged["judgement"] == "right"].to_dict("records"):
            coder = row.get("coder") or check_coder
            rows.append({"image_id": row["image_id"], "path": row.get("path"), "coder": coder,
                         "variable": row["scheme"], "value": as_code(row["category"])})
        return rows, notes
    if "coder" not in columns or not ({"image_id", "path"} & columns):
        raise ValueError(
            f"validation.annotations: '{path}' needs a coder column and image_id or path, then either variable "
            "and value columns or one column per variable (the coding sheet of results/validation/)."
        )
    if {"variable", "value"} <= columns:
        long = table
    else:
        names = [v.name for v in variables if v.name in columns]
        if not names:
            raise ValueError(f"validation.annotations: '{path}' has no column named after a scheme or codebook variable.")
        keys = [c for c in ("image_id", "path", "coder") if c in columns]
        long = table.melt(id_vars=keys, value_vars=names, var_name="variable", value_name="value")
        notes["empty cells (not coded)"] = int((long["value"].str.strip() == "").sum())
        long = long[long["value"].str.strip() != ""]
    for row in long.to_dict("records"):
        rows.append({"image_id": row.get("image_id") or None, "path": row.get("path") or None, "coder": row["coder"],
                     "variable": row["variable"], "value": as_code(row["value"])})
    return rows, notes


@dataclass(frozen=True)
class AnnotationCodes:
    """What the annotation files hold: the usable codes, the import report and the codes left out for their value."""

    codes: pd.DataFrame  # image_id, coder, variable, value, source: the last judgement per coder, image and variable
    report: pd.DataFrame  # source, problem, count
    outside: pd.DataFrame  # as codes: those whose value is no longer a category (a scheme or codebook was edited)


def read_codes(
    paths: list[str], variables: list[CodedVariable], manifest: pd.DataFrame, check_coder: str = "checker",
    coder_names: dict[str, str] | None = None,
) -> AnnotationCodes:
    """The codes of every annotation file, with the import report counting what did not fit.

    coder_names renames coders as files name them (Label Studio exports its user ids) before anything is counted.
    """
    names = {str(k): str(v) for k, v in (coder_names or {}).items()}
    allowed = {v.name: set(v.values) for v in variables}
    by_path = manifest.dropna(subset=["image_id"]).drop_duplicates("path").set_index("path")["image_id"].to_dict()
    known = set(manifest["image_id"].dropna())
    report, kept, outside = [], [], []
    for path in map(Path, paths):
        if path.suffix.lower() == ".json":
            rows, notes = read_export(path)
        else:
            rows, notes = read_sheet(path, variables, check_coder)
        problems = {**notes, "unknown image": 0, "unknown variable": 0, "value outside the scheme or codebook": 0}
        for row in rows:
            image_id = row.get("image_id") or by_path.get(row.get("path"))
            if image_id not in known:
                problems["unknown image"] += 1
            elif row["variable"] not in allowed:
                problems["unknown variable"] += 1
            else:
                coder = str(row["coder"])
                code = {"image_id": image_id, "coder": names.get(coder, coder), "variable": row["variable"],
                        "value": row["value"], "source": path.name}
                if row["value"] in allowed[row["variable"]]:
                    kept.append(code)
                else:
                    problems["value outside the scheme or codebook"] += 1
                    outside.append(code)
        report += [{"source": path.name, "problem": problem, "count": count} for problem, count in problems.items()]
        report.append({"source": path.name, "problem": "codes read", "count": len(rows)})
    codes = pd.DataFrame(kept, columns=[*CODE_COLUMNS, "source"])
    duplicated = codes.duplicated(["image_id", "coder", "variable"], keep="last")
    report.append({"source": "all", "problem": "second judgement of an image by the same coder (the last one counts)",
                   "count": int(duplicated.sum())})
    return AnnotationCodes(codes[~duplicated].reset_index(drop=True), pd.DataFrame(report, columns=["source", "problem", "count"]),
                 pd.DataFrame(outside, columns=[*CODE_COLUMNS, "source"]))


def gold_standard(codes: pd.DataFrame, adjudicator: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per image and variable the coders' majority; a tie goes to the adjudicator's code, or the item is left out.

    Returns (gold: image_id, variable, value, coders; ties: image_id, variable, values, resolved).
    """
    gold, ties = [], []
    for (image_id, variable), group in codes.groupby(["image_id", "variable"], sort=True):
        counts = group["value"].value_counts()
        top = counts[counts == counts.max()].index.tolist()
        if len(top) == 1:
            gold.append({"image_id": image_id, "variable": variable, "value": top[0], "coders": len(group)})
            continue
        ruling = group.loc[group["coder"] == adjudicator, "value"] if adjudicator else pd.Series(dtype=str)
        resolved = len(ruling) == 1 and ruling.iloc[0] in top
        ties.append({"image_id": image_id, "variable": variable, "values": "; ".join(sorted(top)), "resolved": resolved})
        if resolved:
            gold.append({"image_id": image_id, "variable": variable, "value": ruling.iloc[0], "coders": len(group)})
    return (pd.DataFrame(gold, columns=["image_id", "variable", "value", "coders"]),
            pd.DataFrame(ties, columns=["image_id", "variable", "values", "resolved"]))


@dataclass(frozen=True)
class StudyGold:
    """A study's human codes and the one gold standard every step judges and learns against."""

    codes: pd.DataFrame  # image_id, coder, variable, value, source
    report: pd.DataFrame  # the import report: source, problem, count
    gold: pd.DataFrame  # image_id, variable, value, coders
    ties: pd.DataFrame  # image_id, variable, values, resolved
    outside: pd.DataFrame  # codes left out because their value is no longer a category, as codes


def study_gold(paths: list[str], variables: list[CodedVariable], manifest: pd.DataFrame, validation: dict) -> StudyGold:
    """The files in validation.annotations, read with the validation block's coder settings (check_coder, coders,
    adjudicator): one gold standard for every step that reads it."""
    read = read_codes(paths, variables, manifest, validation["check_coder"], validation["coders"])
    adjudicator = None if validation["adjudicator"] is None else str(validation["adjudicator"])
    gold, ties = gold_standard(read.codes, adjudicator)
    return StudyGold(read.codes, read.report, gold, ties, read.outside)
