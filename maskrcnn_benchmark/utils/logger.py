"""Logging set-up shared by the tools: console on the main process, and a log file per run."""

import logging
import os
import sys


def setup_logger(name: str, save_dir: str, distributed_rank: int, filename: str = "log.txt") -> logging.Logger:
    """Logger `name` at DEBUG: prints to stdout on rank 0 only (other ranks stay quiet), and, when
    save_dir is given, also appends to save_dir/filename (rank 0) or save_dir/<filename>.rank<N>."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for handler in list(logger.handlers):  # calling it twice (tests, notebooks) must not duplicate lines
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    if distributed_rank == 0:
        console = logging.StreamHandler(stream=sys.stdout)
        console.setLevel(logging.DEBUG)
        console.setFormatter(formatter)
        logger.addHandler(console)
    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
        name_on_disk = filename if distributed_rank == 0 else f"{filename}.rank{distributed_rank}"
        file_handler = logging.FileHandler(os.path.join(save_dir, name_on_disk))
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger
