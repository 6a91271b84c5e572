"""What a report shows and how: the `report` settings, plus the posts' account column."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReportSettings:
    title: str = "Image coding report"
    samples_per_category: int = 12
    lowest_confidence: int = 6
    seed: int = 20240122
    thumbnail_size: int = 256
    max_failures: int = 500
    account_column: str | None = None
