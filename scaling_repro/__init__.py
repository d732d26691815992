"""scaling_repro: reproduce 'When Scaling Meets LLM Finetuning' (Zhang et al., ICLR 2024)."""

__version__ = "0.1.0"
