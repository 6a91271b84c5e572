"""What routing writes per scheme and what merge joins of it: the routed code of every image and who decided it."""

from __future__ import annotations

import pandas as pd

from ..llm.task import CODED

ROUTED_COLUMNS = ["image_id", "routed", "by", "sent", "confidence", "cheap", "multimodal", "multimodal_status"]


def llm_categories(table: pd.DataFrame, scheme: str) -> pd.Series:
    """image_id -> the LLM's category of `scheme` where it gave one."""
    answered = table[table["status"].isin(CODED)].drop_duplicates("image_id").set_index("image_id")
    return answered[scheme].dropna().astype(str)


def routed_table(route_plan, answers: pd.DataFrame) -> pd.DataFrame:
    """Per routable image of a scheme's plan (routing/run.py SchemeRoute): the routed category, the method that decided it, whether it was sent, and both answers.

    An image sent whose answer is unusable (an error, the budget) keeps the cheap category, and `by` says so.
    """
    cheap = route_plan.cheap
    ids = cheap.category.index
    asked = answers.drop_duplicates("image_id").set_index("image_id")
    llm = llm_categories(answers, route_plan.scheme).reindex(ids)
    sent = route_plan.unsure().reindex(ids).fillna(True).astype(bool)
    decided = sent & llm.notna()
    table = pd.DataFrame({
        "image_id": ids,
        "routed": cheap.category.where(~decided, llm).to_numpy(),
        "by": pd.Series(cheap.method, index=ids).where(~decided, "multimodal").to_numpy(),
        "sent": (sent & ids.isin(asked.index)).to_numpy(),
        "confidence": cheap.confidence.reindex(ids).astype(float).to_numpy(),
        "cheap": cheap.category.to_numpy(),
        "multimodal": llm.to_numpy(),
        "multimodal_status": asked["status"].reindex(ids).to_numpy() if len(asked) else None,
    })
    return table[ROUTED_COLUMNS]


def routed_for_merge(table: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """routed_<scheme>, the method that decided it, whether the image went to the LLM, the cheap confidence."""
    return pd.DataFrame({
        "image_id": table["image_id"],
        f"routed_{scheme}": table["routed"],
        f"routed_{scheme}_by": table["by"],
        f"routed_{scheme}_sent": table["sent"],
        f"routed_{scheme}_confidence": table["confidence"],
    })
