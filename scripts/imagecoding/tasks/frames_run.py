"""One frame-coding run from a configuration: selection, requests, cache, budget, mode, outputs."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .codebook import Codebook, load_codebook
from .frames import (
    Budget,
    FrameRequests,
    FrameTask,
    UploadSettings,
    cost_ledger,
    estimate,
    frames_table,
    render_prompt,
    run_sync,
    select_images,
)
from ..llm.client import LLMClient, LLMSettings
from ..merge import merge_posts
from ..posts import read_posts
from ..llm.cache import ResponseCache

log = logging.getLogger(__name__)


@dataclass
class FrameRun:
    codebook: Codebook
    requests: FrameRequests
    settings: LLMSettings
    tasks: list[FrameTask]
    cache: ResponseCache
    mode: str
    max_cost_usd: float | None
    batch: dict
    work_dir: Path
    client: LLMClient | None = None

    @classmethod
    def from_config(
        cls,
        config: dict,
        manifest: pd.DataFrame,
        posts: pd.DataFrame | None = None,
        need_client: bool = True,
        client=None,
    ) -> "FrameRun":
        llm, frames = config["llm"], config["frames"]
        settings = LLMSettings.from_config(llm)
        codebook = load_codebook(frames["codebook"])
        prompt = render_prompt(frames["prompt"], codebook)
        upload = UploadSettings(frames["detail"], frames.get("max_side"), config["images"]["max_pixels"])
        requests = FrameRequests(codebook, prompt, settings, upload)
        posts_images = None
        if posts is not None:
            post_config = config["posts"]
            posts_images = merge_posts(
                manifest, posts, post_config["image_column"], post_config["id_column"],
                config["images"]["root"], post_config["image_separator"],
            )
            posts_images = posts_images[posts_images["has_post"]]
        images = select_images(manifest, posts_images, frames.get("filters"), frames.get("sample"), frames.get("seed", 1))
        run = cls(
            codebook=codebook,
            requests=requests,
            settings=settings,
            tasks=requests.tasks(images, config["images"]["root"]),
            cache=ResponseCache(llm["cache"]),
            mode=llm["mode"],
            max_cost_usd=llm.get("max_cost_usd"),
            batch=llm.get("batch") or {},
            work_dir=Path(llm["cache"]).parent / "batches",
        )
        if need_client:
            run.client = LLMClient(settings, client)
        return run

    @classmethod
    def from_snakemake(cls, snakemake, need_client: bool = True) -> "FrameRun":
        config = dict(snakemake.config, llm=snakemake.params.llm, frames=snakemake.params.frames)
        manifest = pd.read_parquet(snakemake.input.manifest)
        posts = read_posts(config["posts"]["path"]) if config["posts"]["path"] else None
        return cls.from_config(config, manifest, posts, need_client)

    def budget(self) -> Budget:
        prompt, _ = self.requests.estimated_tokens(self.cache)
        # Worst case per request: twice the prompt estimate and the full completion allowance.
        worst = self.settings.price.cost(2 * prompt + 100, self.settings.max_tokens, batch=self.mode == "batch")
        return Budget(self.max_cost_usd, worst)

    def execute(self, progress=None) -> pd.DataFrame:
        budget = self.budget()
        if self.mode == "batch":
            from ..llm.batch import run_batch

            outcomes = run_batch(
                self.tasks, self.requests, self.client, self.cache, budget, self.work_dir,
                poll_seconds=self.batch.get("poll_seconds", 60),
                completion_window=self.batch.get("completion_window", "24h"),
                max_lines=self.batch.get("max_lines", 50_000),
            )
            if progress:
                progress.update(len(self.tasks))
        else:
            outcomes = run_sync(self.tasks, self.requests, self.client, self.cache, budget, progress)
        table = frames_table(self.codebook, self.tasks, outcomes, self.settings.model)
        new = table[~table["cached"] & (table["cost_usd"] > 0)]
        log.info(
            "%d answers from the cache, %d new for $%.4f; status counts:\n%s",
            int(table["cached"].sum()), len(new), new["cost_usd"].sum(), table["status"].value_counts().to_string(),
        )
        skipped = (table["status"] == "skipped_budget").sum()
        if skipped:
            log.warning(
                "%d images were not coded because llm.max_cost_usd (%s USD) was reached; raise it and re-run: "
                "everything answered so far is cached.", skipped, self.max_cost_usd,
            )
        return table

    def write(self, table: pd.DataFrame, frames_path: str | os.PathLike, ledger_path: str | os.PathLike) -> None:
        table.to_parquet(frames_path, index=False)
        cost_ledger(table).to_csv(ledger_path, index=False)

    def estimate(self) -> str:
        return estimate(self.tasks, self.requests, self.cache, batch=self.mode == "batch").text(
            self.settings, self.max_cost_usd
        )
