"""The agent: the LLM-guided search loop, LLM backends, reflection, run log and CLI."""
