"""What one run of the workflow counts once, in the main Snakemake process, and hands to its jobs: its census.

Every cluster job parses the Snakefile again. The image listing (for the shard count, the runtime
estimates and the manifest's fingerprint) and the library code keys are therefore computed by the
main process only and written to `results/cache/`: the listing as a table named by its fingerprint,
the rest as a small JSON file named by a digest of the configuration, which a job (given the same
configuration by Snakemake) reads instead of listing the image folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

CACHE = Path("results/cache")
KEEP_LISTINGS = 3  # older listings go; a run still using one has read it long before


def config_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def census_path(config: dict) -> Path:
    return CACHE / f"run-{config_digest(config)}.json"


def entry_scripts(scripts_dir: str | Path) -> list[Path]:
    return sorted(Path(scripts_dir).glob("*.py"))


def take_census(config: dict, scripts_dir: str | Path) -> dict:
    """List the images, write the listing if it is new, and key the code of every entry script."""
    import pandas as pd

    from .clip.embeddings import shard_count
    from .manifest import configured_listing, listing_fingerprint
    from .outputs import write_parquet
    from .versions import code_version

    images = config["images"]
    paths, scanned = configured_listing(config)
    fingerprint = listing_fingerprint(paths, images["root"], images["extra_roots"], scanned)
    listing = CACHE / f"listing-{fingerprint[:16]}.parquet"
    if not listing.exists():
        write_parquet(pd.DataFrame({"path": paths}, dtype="string"), listing)
        older = sorted(CACHE.glob("listing-*.parquet"), key=os.path.getmtime)[:-KEEP_LISTINGS]
        for path in older:
            path.unlink(missing_ok=True)
    code = {path.stem: code_version(path) for path in entry_scripts(scripts_dir)}
    size = config["clip"]["shard_size"]
    shards = shard_count(len(paths), size) if size else config["clip"]["shards"]
    return {"images": len(paths), "shards": shards, "fingerprint": fingerprint, "listing": str(listing), "code": code}


def run_census(config: dict, scripts_dir: str | Path, main_process: bool) -> dict:
    """The main process takes the census (and writes it when it changed); a job reads it."""
    path = census_path(config)
    if not main_process:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            print(
                f"{path} is missing or unreadable (it is written by the main Snakemake process): this job lists "
                "the image folder itself. If jobs keep doing so, check that the working directory is shared.",
                file=sys.stderr,
            )
            return take_census(config, scripts_dir)
    census = take_census(config, scripts_dir)
    text = json.dumps(census, indent=2, sort_keys=True)
    if not path.exists() or path.read_text() != text:
        from .outputs import write_text

        write_text(path, text)
    return census
