"""Running Snakemake on a copy of the example, shared by the end-to-end tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tiny_clip import COCA_CONFIG, COCA_NAME, MODEL_CONFIG, MODEL_NAME

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# The xdist group of the tests that share the session's finished example run (conftest.py finished_run).
EXAMPLE_RUN = "example_run"
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [
        str(SNAKEMAKE),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"),
        "--cores", "2",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(workdir: Path) -> dict[str, int]:
    """The job counts of a dry run, as Snakemake's own 'Job stats' table gives them."""
    output = snakemake(workdir, "--dry-run").stdout
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    return {name: int(count) for name, count in (line.split() for line in table) if name != "total"}


def write_config(workdir: Path, checkpoint: Path, extra: dict | None = None, **clip) -> None:
    config = {
        "images": {"root": "images"},
        "posts": {
            "path": "posts.csv",
            "image_column": "image",
            "id_column": "post_id",
            "account_column": "account",
            "date_column": "date",
            "image_separator": ";",
        },
        "clip": {
            "model": MODEL_NAME,
            "model_config": str(MODEL_CONFIG),
            "pretrained": str(checkpoint),
            "schemes": {"image_type": "schemes/image_types.yaml"},
            "workers": 1,
            "batch_size": 8,
            **clip,
        },
        "report": {"samples_per_category": 4, "lowest_confidence": 2},
        **(extra or {}),
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))




def prepare_workdir(workdir: Path) -> Path:
    """The example's images, posts and scheme copied where a test may change them."""
    shutil.copytree(REPO / "example" / "images", workdir / "images")
    shutil.copy(REPO / "example" / "posts.csv", workdir / "posts.csv")
    (workdir / "schemes").mkdir()
    shutil.copy(REPO / "config" / "schemes" / "image_types.yaml", workdir / "schemes")
    return workdir


def ensemble_settings(fake, coca: Path, **ensemble) -> dict:
    """Every signal, the ensemble, frame coding and a consensus mapping, against the local LLM test server."""
    return {
        "signals": {
            "objects": {"weights": None, "min_score": 0.5},
            "captions": {"model": COCA_NAME, "model_config": str(COCA_CONFIG), "pretrained": str(coca), "max_length": 10},
        },
        "ensemble": {"enabled": True, "post_text_column": "caption", **ensemble},
        "frames": {"enabled": True},
        "consensus": {"frames": {"image_type": {"variable": "Event_Occasion", "values": {
            "CampaignMaterial": "Campaign material", "CampaignEvent": "Political event", "MediaAppearance": "Media appearance",
        }}}},
        "llm": {"base_url": fake.base_url, "model": "test-model", "api_key_env": "E2E_ENSEMBLE_KEY",
                "prices": {"test-model": {"input": 1.0, "output": 4.0}}, "backoff_base_s": 0.01},
    }
