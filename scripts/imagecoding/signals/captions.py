"""Captions: a sentence describing each image, generated locally by open_clip's CoCa.

open_clip's own `generate()` needs transformers' BeamSearchScorer, which transformers 4.56 removed
and which older releases only offer beside a huggingface_hub older than the one pinned here. So the
decoding loop is ours: greedy, with a minimum length and a repetition penalty, over CoCa's own forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pyarrow as pa

from ..images import DEFAULT_MAX_PIXELS, image_batches
from .run import loader_failure, rows_table

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("text", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
MERGE_COLUMNS = ["text"]

START, END = 49406, 49407  # CLIP tokenizer's start- and end-of-text tokens


def generate_tokens(model, images, max_length: int = 30, min_length: int = 5, repetition_penalty: float = 1.2):
    """Greedy CoCa decoding of a batch: token ids starting with START, each row ending at END or max_length.

    A row that has said END leaves the batch: later steps run the decoder on the unfinished rows only, so
    a batch costs what its captions need rather than max_length for every row. Each step projects only the
    last position onto the vocabulary, the one greedy decoding reads (the same tokens, about 5% sooner).
    """
    with last_position_logits(model):
        return _greedy(model, images, max_length, min_length, repetition_penalty)


@contextmanager
def last_position_logits(model):
    """While decoding, CoCa's text decoder hands only its last position to the vocabulary projection: a forward
    hook on the decoder's final norm (open_clip 3.3 computes every position's 49,408 logits at every step)."""
    norm = getattr(getattr(model, "text_decoder", None), "ln_final", None)
    hook = norm.register_forward_hook(lambda module, inputs, output: output[:, -1:]) if norm is not None else None
    try:
        yield
    finally:
        if hook is not None:
            hook.remove()


def _greedy(model, images, max_length: int, min_length: int, repetition_penalty: float):
    import torch

    latent, embeddings = model._encode_image(images)  # once per batch, not once per token
    rows = images.shape[0]
    text = torch.full((rows, 1), START, dtype=torch.long, device=images.device)
    active = torch.arange(rows, device=images.device)
    for step in range(max_length - 1):
        logits = model(images[active], text[active], image_latent=latent[active], image_embs=embeddings[active],
                       output_labels=False)["logits"][:, -1]
        logits = logits.float()
        said = torch.gather(logits, 1, text[active])  # tokens already in the caption are made less likely (CTRL's penalty)
        logits.scatter_(1, text[active], torch.where(said > 0, said / repetition_penalty, said * repetition_penalty))
        logits[:, START] = float("-inf")
        if step < min_length:
            logits[:, END] = float("-inf")
        following = logits.argmax(dim=-1)
        column = torch.full((rows,), END, dtype=torch.long, device=images.device)  # finished rows pad with END
        column[active] = following
        text = torch.cat([text, column[:, None]], dim=1)
        active = active[following != END]
        if not len(active):
            break
    return text


def coca_precision(model, precision: str, device: str):
    """CoCa in `signals.captions.precision`: fp32, or int8 dynamic quantisation of the image tower, the text tower
    and the text decoder (CPU only). It gains little: 1.15x at trained lengths in one run and nothing in another
    (docs/benchmarks.md), since attention's input projections are not linear layers and stay fp32."""
    from ..clip.model import quantize
    from ..weights import WeightsUnavailable

    if precision == "fp32":
        return model
    if precision != "int8" or device != "cpu":
        raise WeightsUnavailable(f"signals.captions.precision: {precision} on {device} is not a mode; int8 runs on the "
                                 "CPU only, fp32 everywhere.")
    return quantize(model, ("visual", "text", "text_decoder"))


def decode(tokens) -> str:
    import open_clip

    text = open_clip.decode(tokens)
    return text.split("<end_of_text>")[0].replace("<start_of_text>", "").strip()


def caption_tables(
    model,
    preprocess,
    items: list[tuple[str, str]],
    device: str = "cpu",
    batch_size: int = 16,
    workers: int = 0,
    max_length: int = 30,
    min_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[pa.Table]:
    """Caption result tables batch by batch; images that fail to load are rows with their status."""
    import torch

    batches = image_batches(items, preprocess, batch_size, workers, min_side, max_pixels, pin_memory=device == "cuda")
    with torch.inference_mode():
        for ids, tensors, failures in batches:
            rows = [loader_failure(image_id, error) for image_id, error in failures]
            if tensors is not None:
                tokens = generate_tokens(model, tensors.to(device), max_length=max_length).cpu()
                rows += [
                    {"image_id": image_id, "text": decode(row), "status": "ok", "error": None}
                    for image_id, row in zip(ids, tokens)
                ]
            yield rows_table(rows, SCHEMA)
