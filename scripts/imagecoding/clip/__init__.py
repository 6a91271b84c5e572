"""CLIP: loading open_clip models, embedding images into the store, and zero-shot scoring."""
