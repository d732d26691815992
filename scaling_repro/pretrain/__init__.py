"""Pretraining stage: base models (the tiny ladder, or the paper's 1B-16B) and their checkpoints."""
