"""Signals: text about each image (OCR, detected objects, CLIP tags, captions, Cloud Vision), one table each."""
