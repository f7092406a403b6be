"""Utilities (checkpointing, logging, distributed helpers, OpenCV compatibility...)."""
