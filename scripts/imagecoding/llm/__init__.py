"""The task-neutral LLM engine: client, answer cache, batch mode; it knows no codebook, scheme or prompt."""
