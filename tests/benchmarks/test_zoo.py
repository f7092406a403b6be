"""benchmarks/zoo.py --tiny: every row of the table measured, the compiled column's fall-back."""

import importlib.util
import os
import re

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def zoo():
    spec = importlib.util.spec_from_file_location("zoo", os.path.join(REPO, "benchmarks", "zoo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path for its `import train`
    return module


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _compile_fails(model):
    raise RuntimeError("compile_detector is not there")


def test_tiny_table_has_every_row(zoo, keep_threads, monkeypatch, capsys, tmp_path):
    # One thread: on a shared 2-core machine two threads lose far more to contention than they gain.
    # --compile with a failing compile_detector: the column must say why and the run go on, with
    # no CPU-side compilation (minutes) in a unit test.
    monkeypatch.setattr(zoo, "_compile", _compile_fails)
    json_path = tmp_path / "zoo.json"
    result = zoo.main(
        ["--tiny", "--device", "cpu", "--threads", "1", "--compile", "--budget-s", "0", "--json", str(json_path)]
    )
    out = capsys.readouterr().out
    assert json_path.exists()

    names = [row["model"] for row in result["rows"]]
    assert names == zoo.TINY_MODELS
    assert result["columns"] == ["float32", "compiled"]
    kinds = {m.kind for m in zoo.MODELS if m.name in names}
    assert kinds == {"faster", "mask", "keypoint"}
    assert any("C4" in n for n in names) and any("FPN" in n for n in names)
    assert any(n.startswith("torchvision") for n in names) and any(not n.startswith("torchvision") for n in names)

    for row in result["rows"]:
        cell = row["float32"]
        assert cell["note"] == "", (row["model"], cell["note"])
        for key in ("train_s", "train_mem_gb", "inference_s"):
            assert cell[key] is not None and cell[key] > 0, (row["model"], key, cell[key])
        assert cell["detections"] > 0
        spec = next(m for m in zoo.MODELS if m.name == row["model"])
        if spec.kind == "faster":
            assert cell["branch_s"] is None
        else:
            assert cell["branch_s"] > 0, row["model"]
        compiled = row["compiled"]["note"]
        assert (
            compiled.startswith("n/a (RuntimeError: compile_detector is not there")
            if spec.is_ours
            else compiled == "- (not compiled)"
        )
        assert (row["published_v100"] is not None) == spec.is_ours

    # The printed tables: one line per model in each column, numbers beside the published ones.
    for column in ("float32", "compiled"):
        assert f"### {column}" in out
    for spec in zoo.MODELS:
        lines = [line for line in out.splitlines() if line.startswith(f"| {spec.label} |")]
        assert len(lines) == (2 if spec.name in names else 0), spec.label
    line = next(line for line in out.splitlines() if line.startswith("| Mask R-CNN R-50-FPN |"))
    numbers = [float(v) for v in re.findall(r"\d+\.\d+", line.split("| 2 |", 1)[1])]
    assert all(v > 0 for v in numbers[:4])
    assert "0.4536 | 5.2 | 0.12966 + 0.034" in line


def test_published_table_is_the_original_one(zoo):
    assert len(zoo.PUBLISHED) == 9
    for spec in zoo.MODELS:
        if spec.is_ours:
            assert os.path.exists(os.path.join(REPO, spec.config)), spec.config
            assert spec.name in zoo.PUBLISHED
    r50 = zoo.PUBLISHED["e2e_mask_rcnn_R_50_FPN_1x"]
    assert (
        r50.ims_per_gpu,
        r50.train_mem_gb,
        r50.train_s_per_iter,
        r50.inference_s_per_image,
        r50.mask_s_per_image,
    ) == (2, 5.2, 0.4536, 0.12966, 0.034)
    # im/gpu as the configs give it: SOLVER.IMS_PER_BATCH over the original's 8 GPUs.
    for name, published in zoo.PUBLISHED.items():
        c = zoo.bench.load_config(f"configs/{name}.yaml")
        assert c.SOLVER.IMS_PER_BATCH // 8 == published.ims_per_gpu, name
