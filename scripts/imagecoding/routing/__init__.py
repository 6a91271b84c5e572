"""Routing: the multimodal LLM only for the images the cheaper methods are unsure of, at a certified accuracy."""
