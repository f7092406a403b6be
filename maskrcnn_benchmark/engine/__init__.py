"""Training loop (trainer.py), inference and evaluation over a data loader (inference.py)."""
