"""Faults of distributed CPU trainings, end to end: the cheap scenarios of tools/fault_injection.py on
tiny runs (8 images of 96x128, 3 iterations, random flips drawn in 2 data workers per process).

- the data workers draw no randomness of their own: NUM_WORKERS 0, 1, 2 and a resumed loader agree;
- two processes under torchrun killed with kill -9 and resumed equal an uninterrupted run bit for bit
  (which needs every process's random state in the checkpoint and the seeded augmentation);
- two launchers meeting as two nodes equal one launcher with two processes;
- a stopped (SIGSTOP) process makes the other exit within DIST_TIMEOUT with its rank in the message.
"""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import fault_injection as fi  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    # One uninterrupted two-process run serves the kill and the two-node comparisons.
    return fi.Lab(tmp_path_factory.mktemp("faults"), iters=3, timeout_s=3)


def _check(outcome: fi.Outcome) -> None:
    print(outcome.line())
    assert outcome.passed, outcome.details


def test_data_workers_and_resuming_do_not_change_batches_or_flips(lab):
    _check(fi.scenario_workers(lab))


def test_two_processes_killed_and_resumed_equal_an_uninterrupted_run(lab):
    _check(fi.scenario_kill(lab, nproc=2))


def test_two_launchers_as_two_nodes_equal_one_launcher_with_two_processes(lab):
    _check(fi.scenario_nodes(lab))


def test_a_stopped_process_makes_the_other_exit_naming_it(lab):
    _check(fi.scenario_stall(lab))
