"""Tiny open_clip models for offline tests: architectures from tests/models/*.json, seeded weights."""

from pathlib import Path

MODEL_CONFIG = Path(__file__).parent / "models" / "tiny-clip.json"
MODEL_NAME = MODEL_CONFIG.stem
COCA_CONFIG = Path(__file__).parent / "models" / "tiny-coca.json"
COCA_NAME = COCA_CONFIG.stem


def make_checkpoint(path: str | Path, seed: int = 0, config: Path = MODEL_CONFIG) -> Path:
    """Save randomly initialised but reproducible weights of the model `config` describes as a local checkpoint."""
    import open_clip
    import torch

    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(config.stem, pretrained=None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
