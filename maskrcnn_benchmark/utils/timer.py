"""Wall-clock timing over tic/toc pairs (the original's utils.timer API)."""

import datetime
import time


class Timer:
    """Accumulates the time between each tic() and the next toc().

    `total_time` and `calls` sum every interval; `diff` is the last one. toc() returns the average so
    far (average=True, as in the original) or the last interval.
    """

    def __init__(self) -> None:
        self.reset()

    @property
    def average_time(self) -> float:
        return self.total_time / self.calls if self.calls > 0 else 0.0

    def tic(self) -> None:
        self.start_time = time.perf_counter()  # monotonic, high resolution

    def toc(self, average: bool = True) -> float:
        self.add(time.perf_counter() - self.start_time)
        return self.average_time if average else self.diff

    def add(self, time_diff: float) -> None:
        """Count an interval measured elsewhere."""
        self.diff = time_diff
        self.total_time += time_diff
        self.calls += 1

    def reset(self) -> None:
        self.total_time = 0.0
        self.calls = 0
        self.start_time = 0.0
        self.diff = 0.0

    def avg_time_str(self) -> str:
        return get_time_str(self.average_time)


def get_time_str(time_diff: float) -> str:
    """Seconds as "H:MM:SS[.ffffff]"."""
    return str(datetime.timedelta(seconds=time_diff))
