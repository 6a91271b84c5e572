"""A tiny open_clip model for offline tests: architecture from tests/models/tiny-clip.json, seeded weights."""

from pathlib import Path

MODEL_CONFIG = Path(__file__).parent / "models" / "tiny-clip.json"
MODEL_NAME = MODEL_CONFIG.stem


def make_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Save randomly initialised but reproducible weights as a local checkpoint file."""
    import open_clip
    import torch

    open_clip.add_model_config(MODEL_CONFIG)
    torch.manual_seed(seed)
    model = open_clip.create_model(MODEL_NAME, pretrained=None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
