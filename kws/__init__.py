"""Keyword spotting: the course CRNN (model), Speech Commands data, training, evaluation with
au-fa-fr, model costs (costs), streaming inference with explicit state (stream, its CLI in demo)
and compression (distill, prune, quantize, the report in compress, export)."""
