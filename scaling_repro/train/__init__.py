"""Training: one Accelerate loop (loop.py) and what it does before step 0 (setup.py),
optimizer and schedule (optim.py), checkpoints (checkpoint.py), processes and DeepSpeed
(distributed.py), tokens/s and MFU (throughput.py).

Import :func:`scaling_repro.train.loop.train` from ``loop``, the one entry point; this package
imports nothing heavy itself.
"""
