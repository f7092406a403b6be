"""Smoothed training metrics: SmoothedValue (window median/average and the global average) and
MetricLogger (a named set of them, printed as "name: median (global_avg)")."""

from collections import defaultdict, deque
from typing import Dict

import torch


class SmoothedValue:
    """A series of floats with its median and mean over the last `window_size` values and its
    mean over everything seen."""

    def __init__(self, window_size: int = 20):
        self.deque: deque = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0

    def update(self, value: float) -> None:
        self.deque.append(value)
        self.total += value
        self.count += 1

    @property
    def median(self) -> float:
        return torch.tensor(list(self.deque)).median().item()

    @property
    def avg(self) -> float:
        return torch.tensor(list(self.deque)).mean().item()

    @property
    def global_avg(self) -> float:
        return self.total / max(self.count, 1)

    @property
    def latest(self) -> float:
        return self.deque[-1]


class MetricLogger:
    """meters.update(loss=..., time=...) then str(meters) -> "loss: 0.1234 (0.2345)  time: ..."."""

    def __init__(self, delimiter: str = "\t", window_size: int = 20):
        self.meters: Dict[str, SmoothedValue] = defaultdict(lambda: SmoothedValue(window_size))
        self.delimiter = delimiter

    def update(self, **kwargs) -> None:
        for name, value in kwargs.items():
            if isinstance(value, torch.Tensor):
                value = value.item()
            if not isinstance(value, (float, int)):
                raise TypeError(
                    f"MetricLogger.update: {name} must be a number or a one-element tensor, got {type(value)}"
                )
            self.meters[name].update(float(value))

    def __getattr__(self, attr: str) -> SmoothedValue:
        meters = self.__dict__.get("meters", {})
        if attr in meters:
            return meters[attr]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}'")

    def __str__(self) -> str:
        return self.delimiter.join(
            f"{name}: {meter.median:.4f} ({meter.global_avg:.4f})" for name, meter in self.meters.items()
        )
