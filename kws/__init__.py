"""Keyword spotting: the course CRNN (model), Speech Commands data, training, evaluation with
au-fa-fr and model costs (profile), and streaming inference with explicit state (stream)."""
