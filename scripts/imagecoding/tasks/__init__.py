"""LLM tasks: each supplies its messages, JSON schema and answer check to the engine in llm/."""
