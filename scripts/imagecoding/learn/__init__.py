"""Classifiers fit on the stored embeddings from the study's own human codes."""
