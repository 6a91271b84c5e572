"""Estimates a study publishes from the machine codes and the human codes together."""
