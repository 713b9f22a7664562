"""Evaluator commands: `inspect`, `score`, `mutate`."""
