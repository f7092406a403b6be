"""engine/inference.py in two CPU processes (gloo, under torchrun: this file is also the worker script):
each encodes its share of the images (the second one image twice, as DistributedSampler pads), the
compact results and the predictions are gathered on process 0, and the numbers, result dicts and
predictions.pth equal those of one process."""

import os
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
IOU_TYPES = ("bbox", "segm")


def _run(out_folder: str, rank: int = 0, world_size: int = 1):
    from test_inference_encoding import NUM_IMAGES, Loader, make  # the stub model and loader

    from maskrcnn_benchmark.engine.inference import inference

    dataset, model = make()
    indices = list(range(NUM_IMAGES))
    per_rank = -(-NUM_IMAGES // world_size)
    padded = (indices * 2)[: per_rank * world_size]  # DistributedSampler without shuffling
    return inference(
        model, Loader(dataset, padded[rank::world_size]), "synthetic", IOU_TYPES, device="cpu", output_folder=out_folder
    )


def _worker(out_path: str) -> None:
    import torch.distributed as dist

    sys.path.insert(0, REPO)
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    result = _run(os.path.dirname(out_path), rank, dist.get_world_size())
    if rank == 0:
        results, coco_results = result
        torch.save({"results": results.results, "coco_results": coco_results}, out_path)
    else:
        assert result is None
    dist.destroy_process_group()


def test_two_processes_give_the_numbers_of_one(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import tiny_training as tt

    out = tmp_path / "two" / "results.pth"
    out.parent.mkdir()
    tt.run(tt.launcher(2, script=os.path.abspath(__file__)) + [str(out)], timeout=300)
    two = torch.load(out, weights_only=False)
    results, coco_results = _run(str(tmp_path / "one"))
    assert two["results"] == results.results and 0.05 < results.results["segm"]["AP"] < 0.95
    assert two["coco_results"] == coco_results
    one_preds = torch.load(tmp_path / "one" / "predictions.pth", weights_only=False)
    two_preds = torch.load(tmp_path / "two" / "predictions.pth", weights_only=False)
    assert len(two_preds) == len(one_preds) == 9
    for a, b in zip(one_preds, two_preds):
        assert torch.equal(a.bbox, b.bbox) and torch.equal(a.get_field("mask"), b.get_field("mask"))


if __name__ == "__main__":
    _worker(sys.argv[1])
