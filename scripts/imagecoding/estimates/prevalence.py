"""Category shares a study can publish: the machine's share of every group, corrected by the human codes.

Three figures per category and group:
- naive: the machine's share. Biased by every systematic error, and given without an interval.
- human: the share among the coded images (weighted by inverse inclusion probabilities), with its classical interval.
- ppi: prediction-powered inference (Angelopoulos et al. 2023, PPI++ power tuning) from ppi_py. The machine's share
  over every image, rectified by its errors on the coded ones. Valid when the codes are a probability sample with known
  probabilities, and narrower than human codes alone wherever the machine is any good.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PREVALENCE_COLUMNS = ["variable", "method", "group_by", "group", "category", "n_images", "n_coded", "naive", "human",
                      "human_low", "human_high", "ppi", "ppi_low", "ppi_high", "level", "valid", "note"]
PERIODS = {"week": "W", "month": "M"}


def period_labels(dates: pd.Series, period: str) -> tuple[pd.Series, pd.Series]:
    """(label of each date's week or month, or NaN; the texts that are not dates). Empty cells are no date."""
    text = dates.astype("string").str.strip()
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    bad = text.notna() & (text != "") & parsed.isna()
    labels = parsed.dt.tz_localize(None).dt.to_period(PERIODS[period]).astype("string")
    if period == "week":  # '2025-09-01/2025-09-07' reads better as the week's Monday
        labels = labels.str.slice(0, 10)
    return labels.where(parsed.notna()), text[bad]


def image_groups(image_ids, links: pd.DataFrame, posts: pd.DataFrame | None, account_column: str | None,
                 date_column: str | None, period: str) -> tuple[pd.DataFrame, dict]:
    """Which groups each image belongs to: (image_id, group_by, group) rows, and what could not be grouped.

    image_ids: every image (overall, posted or not); links: post_row and image_id per (post, image). An image
    posted by two accounts counts in both. `problems` holds the unparseable dates (how many, the first few).
    """
    rows = [pd.DataFrame({"image_id": pd.unique(pd.Series(image_ids)), "group_by": "overall", "group": "all"})]
    problems = {"unparseable_dates": 0, "unparseable_examples": []}
    if posts is not None and len(links):
        linked = links.dropna(subset=["image_id", "post_row"])
        row_numbers = linked["post_row"].astype(int).to_numpy()
        if account_column:
            accounts = posts[account_column].astype("string").str.strip().iloc[row_numbers].to_numpy()
            rows.append(pd.DataFrame({"image_id": linked["image_id"].to_numpy(), "group_by": "account", "group": accounts}))
        if date_column:
            labels, bad = period_labels(posts[date_column], period)
            problems["unparseable_dates"] = int(len(bad))
            problems["unparseable_examples"] = [str(v) for v in bad.drop_duplicates().head(5)]
            rows.append(pd.DataFrame({"image_id": linked["image_id"].to_numpy(), "group_by": "period",
                                      "group": labels.iloc[row_numbers].to_numpy()}))
    groups = pd.concat(rows, ignore_index=True).dropna(subset=["group"])
    groups = groups[groups["group"].astype(str) != ""]
    return groups.drop_duplicates(ignore_index=True), problems


def _per_picture(codes: pd.Series, membership: pd.Series) -> pd.Series:
    """image_id -> code as duplicate_group -> code: the representative's where it has one, else a copy's."""
    codes = codes.dropna()
    group = membership.reindex(codes.index).fillna(pd.Series(codes.index, index=codes.index))
    representative_first = np.argsort(~(group.to_numpy() == codes.index.to_numpy()), kind="stable")
    ordered = codes.iloc[representative_first]
    return ordered.groupby(group.iloc[representative_first].to_numpy(), sort=False).first()


def as_pictures(predictions: dict[str, dict[str, pd.Series]], gold: dict[str, pd.Series], groups: pd.DataFrame,
                weights: pd.Series, membership: pd.Series):
    """estimates.unit picture: every near-duplicate group counts once per account and period.

    membership: image_id -> duplicate_group (named after its representative). A picture's machine code is its
    representative's, and a code on any copy is the picture's code, weighted by the group's probability (the
    validation sample draws groups). Returns predictions, gold, groups and weights keyed by picture.
    """
    pictures = groups.assign(image_id=groups["image_id"].map(membership).fillna(groups["image_id"]))
    sizes = membership.value_counts()
    return ({method: {name: _per_picture(codes, membership) for name, codes in by_variable.items()}
             for method, by_variable in predictions.items()},
            {name: _per_picture(codes, membership) for name, codes in gold.items()},
            pictures.drop_duplicates(ignore_index=True),
            # a coded image weighs group size / the group's probability (validation/sample.py); a picture 1 / it
            _per_picture(weights, membership) / sizes.reindex(_per_picture(weights, membership).index).fillna(1))


def _interval(low_high) -> tuple[float, float]:
    low, high = (float(np.ravel(x)[0]) for x in low_high)
    return max(0.0, low), min(1.0, high)


def shares(machine: pd.Series, gold: pd.Series, weights: pd.Series, ids: pd.Index, categories: list[str],
           level: float, min_coded: int) -> tuple[list[dict], str]:
    """Per category: n_images, n_coded, naive, human and ppi with intervals, for the images `ids`.

    machine: image_id -> the method's code; gold: image_id -> the human gold code; weights: image_id -> inverse
    inclusion probability of every coded image. Returns the rows and a note (why the corrected figures are missing).
    """
    from ppi_py import classical_mean_ci, ppi_mean_ci, ppi_mean_pointestimate

    coded_by_machine = machine.reindex(ids).dropna()
    labeled = coded_by_machine.index.intersection(gold.dropna().index)
    n_images, n_coded = len(coded_by_machine), len(labeled)
    note = ""
    if n_coded == 0:
        note = "no coded image in this group: the machine's share only"
    elif n_coded < min_coded:
        note = f"{n_coded} coded images, fewer than estimates.min_coded ({min_coded}): the machine's share only"
    alpha = 1 - level
    w = weights.reindex(labeled).fillna(1.0).to_numpy(dtype=float)
    rows = []
    for category in categories:
        hat_all = (coded_by_machine == category).to_numpy(dtype=float)
        row = {"category": category, "n_images": n_images, "n_coded": n_coded,
               "naive": float(hat_all.mean()) if n_images else np.nan}
        for name in ("human", "human_low", "human_high", "ppi", "ppi_low", "ppi_high"):
            row[name] = np.nan
        if not note and n_images:
            y = (gold.reindex(labeled) == category).to_numpy(dtype=float)
            y_hat = (coded_by_machine.reindex(labeled) == category).to_numpy(dtype=float)
            row["human"] = float(np.average(y, weights=w))
            row["human_low"], row["human_high"] = _interval(classical_mean_ci(y, w=w, alpha=alpha))
            row["ppi"] = float(np.clip(np.ravel(ppi_mean_pointestimate(y, y_hat, hat_all, w=w))[0], 0, 1))
            row["ppi_low"], row["ppi_high"] = _interval(ppi_mean_ci(y, y_hat, hat_all, alpha=alpha, w=w))
        rows.append(row)
    return rows, note


def prevalence(predictions: dict[str, dict[str, pd.Series]], gold: dict[str, pd.Series], variables, groups: pd.DataFrame,
               weights: pd.Series, level: float, min_coded: int, valid: bool, invalid_reason: str = "") -> pd.DataFrame:
    """Every variable, method, group and category of prevalence.csv.

    predictions: method -> variable -> Series(image_id -> code); gold: variable -> Series(image_id -> code);
    variables: CodedVariable list; groups: image_groups' rows. `valid` is false when the codes are not the
    workflow's own probability sample: the corrected figures are then computed all the same, flagged, and say why.
    """
    members = {key: pd.Index(group["image_id"]) for key, group in groups.groupby(["group_by", "group"], sort=True)}
    order = {"overall": 0, "account": 1, "period": 2}
    rows = []
    for variable in variables:
        variable_gold = gold.get(variable.name, pd.Series(dtype=object))
        for method in variable.methods:
            machine = predictions.get(method, {}).get(variable.name)
            if machine is None:
                continue
            for (group_by, group) in sorted(members, key=lambda key: (order[key[0]], str(key[1]))):
                found, note = shares(machine, variable_gold, weights, members[(group_by, group)], list(variable.values),
                                     level, min_coded)
                if not note and not valid:
                    note = f"not valid: {invalid_reason}"
                for row in found:
                    rows.append({"variable": variable.name, "method": method, "group_by": group_by, "group": group,
                                 **row, "level": level, "valid": bool(valid and not np.isnan(row["ppi"])), "note": note})
    return pd.DataFrame(rows, columns=PREVALENCE_COLUMNS)


def dsl_input(predictions: dict[str, dict[str, pd.Series]], gold: dict[str, pd.Series], design: pd.DataFrame,
              links: pd.DataFrame, posts: pd.DataFrame | None, account_column: str | None, date_column: str | None,
              period: str, image_ids: pd.Index) -> pd.DataFrame:
    """One row per image for R's dsl (Egami et al.): every method's code (<method>_<variable>), the gold code
    (gold_<variable>, empty where uncoded), `labeled`, `sample_prob` (its inclusion probability under the
    design, coded or not), and the account and period of the image's first post."""
    table = pd.DataFrame(index=pd.Index(image_ids, name="image_id").unique())
    first = links.dropna(subset=["image_id", "post_row"]).drop_duplicates("image_id").set_index("image_id")["post_row"]
    if posts is not None and len(first):
        row_numbers = first.reindex(table.index)
        known = row_numbers.notna()
        for name, column in (("account", account_column), ("date", date_column)):
            if column:
                values = pd.Series(pd.NA, index=table.index, dtype="string")
                values[known] = posts[column].astype("string").iloc[row_numbers[known].astype(int).to_numpy()].to_numpy()
                table[name] = values
        if date_column:
            table["period"] = period_labels(table.pop("date"), period)[0].to_numpy()
    probability = design.set_index("image_id")["inclusion_probability"] if len(design) else pd.Series(dtype=float)
    labeled = pd.Series(False, index=table.index)
    for variable, codes in sorted(gold.items()):
        table[f"gold_{variable}"] = codes.reindex(table.index)
        labeled |= table[f"gold_{variable}"].notna()
    for method, by_variable in predictions.items():
        for variable, codes in sorted(by_variable.items()):
            table[f"{method}_{variable}"] = codes.reindex(table.index)
    table["labeled"] = labeled.astype(int)
    table["sample_prob"] = probability.reindex(table.index)
    return table.reset_index()


# The routed result first (it is what a routed study publishes), then the study's codes, zero-shot last.
CHART_ORDER = ("routed", "learned", "multimodal", "consensus", "ensemble", "frames", "clip")


def charted_methods(variables, predictions: dict[str, dict[str, pd.Series]], wanted: str | None = None) -> dict[str, str]:
    """variable -> the method the report charts and headlines: `wanted` (estimates.report_method) where it codes
    the variable, else the first of CHART_ORDER that does."""
    chosen = {}
    for variable in variables:
        found = [m for m in ([wanted] if wanted else CHART_ORDER)
                 if m in variable.methods and variable.name in predictions.get(m, {})]
        if found:
            chosen[variable.name] = found[0]
    return chosen


def headline_sentences(table: pd.DataFrame, method_names: dict[str, str], variable_method: dict[str, str]) -> list[str]:
    """One sentence per variable and group with corrected figures: its largest corrected share, as a paper says it."""
    out = []
    for variable, method in variable_method.items():
        rows = table[(table["variable"] == variable) & (table["method"] == method) & table["ppi"].notna()]
        for (group_by, group), found in rows.groupby(["group_by", "group"], sort=False):
            top = found.sort_values("ppi", ascending=False).iloc[0]
            whose = "all images" if group_by == "overall" else f"{group}'s images"
            caveat = "" if top["valid"] else " (not valid: the codes are not the workflow's probability sample)"
            out.append(f"{method_names.get(method, method)} puts {top['naive']:.0%} of {whose} in {top['category']}; "
                       f"corrected with {int(top['n_coded'])} human codes the share is {top['ppi']:.0%} "
                       f"[{top['ppi_low']:.0%}, {top['ppi_high']:.0%}]{caveat}.")
    return out
