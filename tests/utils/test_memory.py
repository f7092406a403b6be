"""The "max mem" of the training log on the CPU: the process's peak resident memory."""

import torch

from maskrcnn_benchmark.utils.memory import peak_memory_mb


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def test_cpu_peak_is_at_least_the_current_resident_memory_and_grows():
    before = peak_memory_mb(torch.device("cpu"))
    assert before >= 0.99 * _rss_mb()
    block = torch.ones(16 * 2**20)  # 64 MiB, written
    during = _rss_mb()
    assert peak_memory_mb(torch.device("cpu")) >= 0.99 * during and during > block.numel() * 4 / 2**20
