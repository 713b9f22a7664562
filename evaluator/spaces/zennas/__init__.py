"""The Zen-NAS search spaces: super blocks (`ops`), the block-string codec, rules, cost
model, random mutation, torch builder and prompt facts; `space` puts them behind the
`SearchSpace` interface."""
