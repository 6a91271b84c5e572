"""Whether an LLM task agrees with itself: repeats and prompt variants of its requests, measured as coders are."""
