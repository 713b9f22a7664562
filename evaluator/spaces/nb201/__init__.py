"""NAS-Bench-201 (the NATS-Bench topology search space): 15,625 cells of 6 edges and 5 ops.

Modules, each importable on its own:

* `cell`: the ops, the `Cell` value, the string codec (standard and neutral op names) and a
  dense integer code of every cell (no torch).
* `cost`: parameters, FLOPs and activation counts exactly as NATS-Bench counts them (no torch).
* `mutation`: NATS-Bench's random sampling and regularized-evolution mutation, seeded.
* `bench`: the benchmark's test accuracies of every cell, read from package data (no torch).
* `builder`: the PyTorch network (NATS-Bench `TinyNetwork` with `InferCell`s); the only module
  that imports torch.
"""
