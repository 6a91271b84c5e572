"""Captions: our CoCa decoding loop against a scripted model, tiny CoCa for real, and the LLM method."""

import copy
import io
from pathlib import Path

import open_clip
import pyarrow as pa
import pytest
import torch
from PIL import Image
from snakemake.utils import validate

from conftest import gps_photos
from imagecoding.clip.model import ModelSpec, load_clip
from imagecoding.signals.captions import END, START, caption_tables, coca_precision, decode, generate_tokens
from imagecoding.tasks.captions import SCHEMA, captions_run
from imagecoding.weights import WeightsUnavailable
from llm_server import FakeLLM
from tiny_clip import COCA_CONFIG, COCA_NAME

VOCAB = 49408
REPO = Path(__file__).resolve().parent.parent


class Scripted(torch.nn.Module):
    """Stands in for CoCa: at step t the logits favour script[t][0], then script[t][1], with CoCa's call signature."""

    def __init__(self, script):
        super().__init__()
        self.script = script
        self.encoded = 0

    def _encode_image(self, images):
        self.encoded += 1
        return torch.zeros(images.shape[0], 4), torch.zeros(images.shape[0], 2, 4)

    def forward(self, image, text, image_latent=None, image_embs=None, output_labels=True):
        assert image_latent is not None and image_embs is not None  # the image is encoded once, not per token
        step = text.shape[1] - 1
        logits = torch.zeros(text.shape[0], text.shape[1], VOCAB)
        first, second = self.script[step] if step < len(self.script) else (END, 0)
        logits[:, -1, first] = 10.0
        logits[:, -1, second] = 9.0
        return {"logits": logits}


def tokens_of(text: str) -> list[int]:
    return open_clip.get_tokenizer("ViT-B-32")([text])[0].tolist()[1 : 1 + len(text.split())]


def test_greedy_decoding_follows_the_model_and_stops_at_the_end_token():
    words = tokens_of("a poster with text")
    model = Scripted([(t, 0) for t in words] + [(END, 0)] * 5)
    tokens = generate_tokens(model, torch.zeros(2, 3, 8, 8), max_length=30, min_length=2)
    assert tokens[0, 0] == START and tokens.shape[0] == 2
    assert decode(tokens[0]) == decode(tokens[1]) == "a poster with text"
    assert model.encoded == 1


class PerRow(Scripted):
    """Row r of the batch says END after lengths[r] words; records how many rows each decoder step ran on."""

    def __init__(self, lengths):
        super().__init__([])
        self.lengths = lengths
        self.batch_sizes = []

    def forward(self, image, text, image_latent=None, image_embs=None, output_labels=True):
        self.batch_sizes.append(text.shape[0])
        logits = torch.zeros(text.shape[0], text.shape[1], VOCAB)
        for row, length in enumerate(image[:, 0, 0, 0].long().tolist()):
            logits[row, -1, END if text.shape[1] > length else 320 + text.shape[1]] = 10.0
        return {"logits": logits}


def test_rows_that_have_finished_leave_the_batch_and_keep_their_caption():
    lengths = [2, 6, 3, 9]
    images = torch.zeros(4, 3, 8, 8)
    images[:, 0, 0, 0] = torch.tensor(lengths, dtype=torch.float)
    model = PerRow(lengths)
    tokens = generate_tokens(model, images, max_length=30, min_length=0)
    for row, length in enumerate(lengths):
        said = tokens[row, 1:].tolist()
        assert said[:length] == [320 + t for t in range(1, length + 1)] and set(said[length:]) == {END}
    assert model.batch_sizes[0] == 4 and model.batch_sizes[-1] == 1  # the longest caption decodes alone at the end
    assert sum(model.batch_sizes) == sum(length + 1 for length in lengths)  # no step spent on a finished row
    assert tokens.shape[1] == max(lengths) + 2


def test_no_caption_ends_before_the_minimum_length_or_runs_past_the_maximum():
    early = Scripted([(END, 320), (END, 321), (END, 322)])
    tokens = generate_tokens(early, torch.zeros(1, 3, 8, 8), max_length=30, min_length=2)[0].tolist()
    assert tokens[1:3] == [320, 321] and tokens[3] == END  # END only once two tokens are said
    endless = Scripted([(320 + i, 0) for i in range(100)])
    assert generate_tokens(endless, torch.zeros(1, 3, 8, 8), max_length=6)[0].shape[0] == 6


def test_repeated_words_are_penalised():
    vote, sunday = tokens_of("vote sunday")
    model = Scripted([(vote, 400), (vote, sunday), (vote, 401)])
    tokens = generate_tokens(model, torch.zeros(1, 3, 8, 8), max_length=4, min_length=0, repetition_penalty=1.2)
    assert tokens[0, 1:3].tolist() == [vote, sunday]  # 10/1.2 < 9: the said word loses to the next best
    again = generate_tokens(model, torch.zeros(1, 3, 8, 8), max_length=4, min_length=0, repetition_penalty=1.0)
    assert again[0, 1:3].tolist() == [vote, vote]


def test_tiny_coca_captions_every_image_and_reports_failures(tmp_path, tiny_coca_checkpoint):
    paths = gps_photos(tmp_path / "photos", 3, seed=1, size=(60, 80))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    model, preprocess, _ = load_clip(ModelSpec(COCA_NAME, str(tiny_coca_checkpoint), str(COCA_CONFIG)))
    items = [(f"id{i}", str(p)) for i, p in enumerate(paths)] + [("bad", str(broken))]
    runs = [pa.concat_tables(caption_tables(model, preprocess, items, batch_size=2, max_length=8)).to_pylist() for _ in range(2)]
    rows = {r["image_id"]: r for r in runs[0]}
    assert set(rows) == {"id0", "id1", "id2", "bad"}
    assert rows["bad"]["status"] == "not_an_image" and rows["bad"]["text"] is None
    for image_id in ("id0", "id1", "id2"):
        assert rows[image_id]["status"] == "ok" and isinstance(rows[image_id]["text"], str)
        assert len(open_clip.get_tokenizer("ViT-B-32")([rows[image_id]["text"]])[0].nonzero()) <= 8 + 2
    assert runs[0] == runs[1]  # greedy decoding is deterministic


class Hidden:
    """The model without its text_decoder attribute in sight: decoding cannot shorten the vocabulary projection."""

    def __init__(self, model):
        self.model = model
        self.shapes = []

    def _encode_image(self, images):
        return self.model._encode_image(images)

    def __call__(self, *args, **kwargs):
        out = self.model(*args, **kwargs)
        self.shapes.append(tuple(out["logits"].shape))
        return out


def test_projecting_only_the_last_position_gives_the_same_captions(tiny_coca_checkpoint):
    model, _, _ = load_clip(ModelSpec(COCA_NAME, str(tiny_coca_checkpoint), str(COCA_CONFIG)))
    with torch.no_grad():  # open_clip starts the vocabulary projection at zero: every logit would be 0
        model.text_decoder.text_projection.normal_(0, 0.5)
    images = torch.rand(3, 3, 32, 32)
    every = Hidden(model)
    with torch.no_grad():
        want = generate_tokens(every, images, max_length=8, min_length=2)
        sizes = []
        hook = model.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output["logits"].shape)))
        got = generate_tokens(model, images, max_length=8, min_length=2)
        hook.remove()
    assert torch.equal(want, got) and len(set(want[:, 1:].flatten().tolist())) > 1
    assert every.shapes[-1][1] > 1 and {size[1] for size in sizes} == {1}  # one position projected per step
    assert model.text_decoder.ln_final._forward_hooks == {}  # the hook is gone once decoding ends


def test_int8_coca_quantises_every_tower_and_still_captions(tmp_path, tiny_coca_checkpoint):
    spec = ModelSpec(COCA_NAME, str(tiny_coca_checkpoint), str(COCA_CONFIG))
    exact, preprocess, _ = load_clip(spec)
    with torch.no_grad():  # open_clip starts the vocabulary projection at zero: every logit would be 0
        exact.text_decoder.text_projection.normal_(0, 0.5)
    fast = coca_precision(copy.deepcopy(exact), "int8", "cpu")
    for tower in ("visual", "text", "text_decoder"):
        kinds = {type(part).__module__ for part in getattr(fast, tower).modules() if "Linear" in type(part).__name__}
        assert any("quantized" in kind for kind in kinds), tower
    images = torch.rand(4, 3, 32, 32)
    text = torch.full((4, 1), START)
    with torch.no_grad():  # the next-token logits of one decoder step, from the same image and prefix
        want = exact(images, text, output_labels=False)["logits"][:, -1]
        got = fast(images, text, output_labels=False)["logits"][:, -1]
    assert torch.nn.functional.cosine_similarity(want - want.mean(1, keepdim=True), got - got.mean(1, keepdim=True)).min() > 0.99
    paths = gps_photos(tmp_path / "photos", 2, seed=4, size=(60, 80))
    rows = pa.concat_tables(caption_tables(fast, preprocess, [(f"id{i}", str(p)) for i, p in enumerate(paths)],
                                           batch_size=2, max_length=8)).to_pylist()
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(isinstance(r["text"], str) for r in rows)
    assert coca_precision(exact, "fp32", "cuda") is exact
    with pytest.raises(WeightsUnavailable, match="int8 runs on the CPU only"):
        coca_precision(exact, "int8", "cuda")


def test_captions_from_the_llm_carry_the_image_without_exif_and_cost(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "sk-captions")
    paths = gps_photos(tmp_path / "photos", 3, seed=2, size=(600, 800))
    fake = FakeLLM(SCHEMA).start()
    try:
        config = {
            "images": {"root": str(tmp_path)},
            "signals": {"captions": {"method": "llm", "prompt": str(REPO / "config" / "prompts" / "captions.j2")}},
            "llm": {
                "base_url": fake.base_url, "model": "test-vision", "api_key_env": "TEST_LLM_KEY",
                "prices": {"test-vision": {"input": 1.0, "output": 2.0}}, "cache": str(tmp_path / "llm.sqlite"),
                "backoff_base_s": 0.01,
            },
        }
        validate(config, str(REPO / "config" / "schema" / "config.schema.yaml"), set_default=True)
        run = captions_run(config, [(f"id{i}", str(p)) for i, p in enumerate(paths)])
        table = run.execute()
        assert list(table["text"]) == ["VOTE"] * 3 and (table["status"] == "ok").all()
        assert (table["cost_usd"] > 0).all() and not any(entry["problem"] for entry in fake.log)
        for entry in fake.log:
            with Image.open(io.BytesIO(entry["jpeg"])) as upload:
                assert max(upload.size) <= 512 and len(upload.getexif()) == 0
        before = len(fake.log)
        assert captions_run(config, [(f"id{i}", str(p)) for i, p in enumerate(paths)]).execute()["cached"].all()
        assert len(fake.log) == before
    finally:
        fake.stop()
