"""What every LLM task's section shows: answers by status, the ones that could not be used, and the cost."""

from __future__ import annotations

import pandas as pd

from ..llm.task import ANSWERED


def answers_view(table: pd.DataFrame, paths: dict[str, str], max_failures: int) -> dict:
    """Status counts, unusable answers (with the reason) and cost of one task's table."""
    failed = table[table["status"] != "ok"]
    cost = {
        "model": str(table["model"].iloc[0]) if len(table) else "",
        "images": len(table),
        "answers": int(table["status"].isin(ANSWERED).sum()),
        "from_cache": int(table["cached"].sum()),
        "total_usd": float(table["cost_usd"].sum()),
        "paid_this_run_usd": float(table.loc[~table["cached"], "cost_usd"].sum()),
        "prompt_tokens": int(table["prompt_tokens"].fillna(0).sum()),
        "completion_tokens": int(table["completion_tokens"].fillna(0).sum()),
        "skipped_budget": int((table["status"] == "skipped_budget").sum()),
    }
    cost["per_image_usd"] = cost["total_usd"] / max(1, cost["answers"])
    return {
        "status_counts": {str(k): int(v) for k, v in table["status"].value_counts().items()},
        "failures": [
            {"image_id": r["image_id"], "path": paths.get(r["image_id"], ""), "status": r["status"], "error": r["error"]}
            for r in failed.head(max_failures).to_dict("records")
        ],
        "failures_total": len(failed),
        "cost": cost,
    }
