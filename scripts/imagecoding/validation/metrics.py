"""Agreement metrics from scikit-learn and krippendorff: each method against the gold standard and each coder,
and the coders against each other. One tidy table: method, variable, against, metric, class, value, ci_low, ci_high, n."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..agreement import cohen_kappa, percent_agreement

METRIC_COLUMNS = ["method", "variable", "against", "metric", "class", "value", "ci_low", "ci_high", "n"]
METHOD_NAMES = {"clip": "CLIP", "learned": "The learned classifier", "ensemble": "The ensemble",
                "multimodal": "The multimodal LLM", "routed": "Routing (the LLM where the cheap method is unsure)",
                "consensus": "The consensus of methods", "frames": "Frame coding"}


def _row(method, variable, against, metric, value, n, low=np.nan, high=np.nan, category=None) -> dict:
    return {"method": method, "variable": variable, "against": against, "metric": metric, "class": category,
            "value": float(value), "ci_low": float(low), "ci_high": float(high), "n": int(n)}


def _pair_rows(method: str, variable: str, against: str, first: pd.Series, second: pd.Series) -> list[dict]:
    """Percent agreement and kappa of two aligned codings, as two rows."""
    n = len(first)
    return [_row(method, variable, against, "percent_agreement", percent_agreement(first, second), n),
            _row(method, variable, against, "kappa", cohen_kappa(first, second), n)]


def _summary(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    labels = sorted(set(y_true) | set(y_pred))
    return {
        "accuracy": accuracy_score(y_true, y_pred, sample_weight=weights),
        "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0, sample_weight=weights),
        "kappa": cohen_kappa(y_true, y_pred, weights=weights),
    }


def against_gold(method: str, variable: str, predicted: pd.Series, gold: pd.Series, values: list[str],
                 bootstrap: int = 1000, seed: int = 1, weights: pd.Series | None = None) -> tuple[list[dict], pd.DataFrame]:
    """Rows of metrics (with seeded bootstrap 95% intervals) and the confusion matrix (rows: gold, columns: method).

    weights: image_id -> inverse inclusion probability. Every figure is then weighted (scikit-learn's
    sample_weight), so it estimates the whole corpus rather than the sample, and the confusion matrix counts
    images of the corpus; the bootstrap resamples codes with their weights. `n` stays the number of codes.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    both = pd.concat([gold.rename("gold"), predicted.rename("predicted")], axis=1, join="inner").dropna()
    y_true, y_pred = both["gold"].to_numpy(dtype=object), both["predicted"].to_numpy(dtype=object)
    w = None if weights is None else weights.reindex(both.index).fillna(1.0).to_numpy(dtype=float)
    n = len(both)
    counts = confusion_matrix(y_true, y_pred, labels=values, sample_weight=w) if n else np.zeros((len(values),) * 2, int)
    matrix = pd.DataFrame(np.round(counts, 1) if w is not None else counts,
                          index=pd.Index(values, name="gold"), columns=values)
    if not n:
        return [_row(method, variable, "gold", "n", 0, 0)], matrix
    point = _summary(y_true, y_pred, w)
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in point}
    for _ in range(bootstrap):
        pick = rng.integers(0, n, n)
        for name, value in _summary(y_true[pick], y_pred[pick], None if w is None else w[pick]).items():
            draws[name].append(value)
    rows = []
    for name, value in point.items():
        low, high = np.nanpercentile(draws[name], [2.5, 97.5]) if bootstrap else (np.nan, np.nan)
        rows.append(_row(method, variable, "gold", name, value, n, low, high))
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=values, zero_division=0,
                                                               sample_weight=w)
    support = pd.Series(y_true).value_counts().reindex(values, fill_value=0).to_numpy()  # codes, not weights
    for index, category in enumerate(values):
        for name, numbers in (("precision", precision), ("recall", recall), ("f1", f1), ("support", support)):
            rows.append(_row(method, variable, "gold", name, numbers[index], n, category=category))
    return rows, matrix


def against_coders(method: str, variable: str, predicted: pd.Series, codes: pd.DataFrame) -> list[dict]:
    """Cohen's kappa and percent agreement of a method with each coder, as if it were one more coder."""
    rows = []
    for coder, group in codes.groupby("coder"):
        both = pd.concat([group.set_index("image_id")["value"].rename("coder"), predicted.rename("method")], axis=1, join="inner").dropna()
        if len(both):
            rows += _pair_rows(method, variable, f"coder:{coder}", both["coder"], both["method"])
    return rows


def value_numbers(table: pd.DataFrame, values: list[str]) -> np.ndarray:
    """A coders x images table of codes as the numbers of their values (NaN: not coded, or not a value)."""
    index = {value: number for number, value in enumerate(values)}
    return np.array([[index.get(code, np.nan) for code in row] for row in table.to_numpy(dtype=object)], dtype=float)


def nominal_alpha(table: pd.DataFrame | np.ndarray, values: list[str]) -> float:
    """Krippendorff's alpha (nominal) of a coders x images table of codes (NaN: not coded), or of their numbers
    (value_numbers); NaN where undefined."""
    import krippendorff

    data = table if isinstance(table, np.ndarray) else value_numbers(table, values)
    if len(values) < 2 or not np.isfinite(data).any() or len(np.unique(data[np.isfinite(data)])) < 2:
        return np.nan  # one value seen: no variation to agree on
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal",
                                    value_domain=list(range(len(values)))))


def between_coders(variable: str, codes: pd.DataFrame, values: list[str]) -> list[dict]:
    """Krippendorff's alpha (nominal) over all coders, and pairwise kappa and percent agreement, with n."""
    table = codes.pivot_table(index="coder", columns="image_id", values="value", aggfunc="last")
    rows = []
    coded_twice = int((table.notna().sum(axis=0) >= 2).sum())
    if len(table) >= 2 and coded_twice:
        rows.append(_row("coders", variable, "coders", "krippendorff_alpha", nominal_alpha(table, values), coded_twice))
    for first, second in itertools.combinations(table.index, 2):
        both = table.loc[[first, second]].T.dropna()
        if len(both):
            rows += _pair_rows("coders", variable, f"{first}~{second}", both[first], both[second])
    return rows


def sentences(metrics: pd.DataFrame) -> list[str]:
    """One plain sentence per method and variable, as a paper would report it."""
    out = []
    gold = metrics[(metrics["against"] == "gold") & metrics["class"].isna()]
    for (method, variable), group in gold.groupby(["method", "variable"], sort=False):
        values = group.set_index("metric")
        if "accuracy" not in values.index:
            continue
        accuracy, kappa = values.loc["accuracy"], values.loc["kappa"]
        interval = "" if np.isnan(kappa["ci_low"]) else f" [{kappa['ci_low']:.2f}, {kappa['ci_high']:.2f}]"
        kappa_text = "κ undefined" if np.isnan(kappa["value"]) else f"κ = {kappa['value']:.2f}{interval}"
        if bool(accuracy.get("weighted", False)):
            share = (f"an estimated {accuracy['value'] * 100:.0f}% of the corpus ({int(accuracy['n'])} codes weighted "
                     "by their inclusion probabilities)")
        else:
            share = f"{accuracy['value'] * 100:.0f}% of {int(accuracy['n'])} images"
        out.append(f"{METHOD_NAMES.get(method, method)} {variable} agrees with the human gold standard on {share}, {kappa_text}.")
    return out
