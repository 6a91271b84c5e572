"""Delete the stores (`make clean-stores`), after listing each with its size and the LLM answers lost.

    .venv/bin/python tools/clean_stores.py [--configfile my-study.yaml] [--yes]

Run it in the folder you run snakemake in. It reads the configuration as a run does (the schema's
defaults, store.root, the store keys), so it deletes exactly where the workflow keeps its embeddings,
signals and LLM answers, and nothing in results/. Without --yes it asks first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from imagecoding.config import ConfigError, check_schema, resolve_stores  # noqa: E402
from imagecoding.store_root import (  # noqa: E402
    LOCKS,
    check_deletable,
    existing_stores,
    paid_answers,
    run_is_active,
)

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def load_config(path: str | Path) -> dict:
    """A configuration file with the schema's defaults filled in and the store paths resolved, as a run sees it."""
    from snakemake.utils import validate

    if not Path(path).is_file():
        raise ConfigError(f"no configuration at '{path}'. Name your study's: `make clean-stores CONFIG=my-study.yaml`.")
    config = yaml.safe_load(Path(path).read_text()) or {}
    check_schema(config, SCHEMA)
    validate(config, str(SCHEMA), set_default=True)
    resolve_stores(config)
    return config


def human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/config.yaml", help="the study's configuration (default: %(default)s)")
    parser.add_argument("--yes", action="store_true", help="delete without asking")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.configfile)
        stores = existing_stores(config)
        check_deletable(stores, config, REPO)
    except (ConfigError, OSError, yaml.YAMLError) as exc:
        print(exc, file=sys.stderr)
        return 1
    root = Path(config["store"]["root"])
    if not stores:
        print(f"No stores to delete for {args.configfile} (store.root: {root}).")
        remove_if_empty(root)
        return 0

    llm_cache = next((store.path for store in stores if store.path == Path(config["llm"]["cache"])), None)
    answers = paid_answers(llm_cache) if llm_cache else None  # first: reading folds SQLite's log into the file
    sizes = [store.size() for store in stores]
    print(f"make clean-stores deletes, for {args.configfile}:")
    for store, size in zip(stores, sizes):
        print(f"  {human(size):>9}  {store.path}  ({store.key}: {store.holds})")
    print(f"  {human(sum(sizes)):>9}  in all")
    if llm_cache:
        paid = f"{answers[0]:,} LLM answers, which cost ${answers[1]:.2f}," if answers else "The LLM answers"
        print(f"{paid} are deleted with {llm_cache} and will be paid for again by the next run that asks.")
    print("Embeddings and signals are computed again, at their full time, by the next run.")

    if run_is_active():
        print(f"Nothing deleted: a Snakemake run holds this folder ({LOCKS}). Wait for it to end "
              "(or run `snakemake --unlock` if none runs), then try again.", file=sys.stderr)
        return 1
    if not args.yes:
        if not sys.stdin.isatty():
            print("Nothing deleted: nobody to ask. Run `make clean-stores YES=1` to delete without being asked.",
                  file=sys.stderr)
            return 1
        if input("Delete them? Type yes to delete: ").strip().lower() != "yes":
            print("Nothing deleted.")
            return 1
    for store in stores:
        store.delete()
        print(f"deleted {store.path}")
    remove_if_empty(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
