"""The named FBNet architectures (MODEL.FBNET.ARCH), in the format fbnet_builder documents.

Stage lists give [t, c, n, s] runs: expansion, output channels, number of blocks, stride of the
first block (negative: upsample). The stages named in "backbone" form the trunk (stride 16 for all
of these); "rpn", "bbox" and "mask" name the stages of those heads. `add_archs` registers more.
"""

from typing import Dict


def _arch(first, op_types, stages, **roles) -> dict:
    return {
        "block_op_type": op_types,
        "block_cfg": {"first": first, "stages": stages, "last": [0, 0.0], "backbone": [0, 1, 2, 3], **roles},
    }


MODEL_ARCH: Dict[str, dict] = {
    "default": _arch(
        [32, 2],
        [["ir_k3"], ["ir_k3"] * 2, ["ir_k3"] * 3, ["ir_k3"] * 7, ["ir_k3"] * 4, ["ir_k3"] * 3, ["ir_k3"] * 5],
        [
            [[1, 16, 1, 1]],
            [[6, 24, 2, 2]],
            [[6, 32, 3, 2]],
            [[6, 64, 4, 2], [6, 96, 3, 1]],
            [[4, 160, 1, 2], [6, 160, 2, 1], [6, 240, 1, 1]],  # stage 4: box head
            [[6, 96, 3, 1]],  # stage 5: RPN head
            [[4, 160, 1, 1], [6, 160, 3, 1], [3, 80, 1, -2]],  # stage 6: mask head (upsamples x2)
        ],
        rpn=[5],
        bbox=[4],
        mask=[6],
    ),
    "xirb16d_dsmask": _arch(
        [16, 2],
        [["ir_k3"], ["ir_k3"] * 2, ["ir_k3"] * 3, ["ir_k3"] * 7, ["ir_k3"] * 4, ["ir_k3"] * 5, ["ir_k3"] * 3],
        [
            [[1, 16, 1, 1]],
            [[6, 32, 2, 2]],
            [[6, 48, 3, 2]],
            [[6, 96, 4, 2], [6, 128, 3, 1]],
            [[4, 128, 1, 2], [6, 128, 2, 1], [6, 160, 1, 1]],  # stage 4: box head
            # stage 5: mask head (down x2, then up x4)
            [[4, 128, 1, 2], [6, 128, 2, 1], [6, 128, 1, -2], [3, 64, 1, -2]],
            [[6, 128, 3, 1]],  # stage 6: RPN head
        ],
        rpn=[6],
        bbox=[4],
        mask=[5],
    ),
    "mobilenet_v2": _arch(
        [32, 2],
        [["ir_k3"], ["ir_k3"] * 2, ["ir_k3"] * 3, ["ir_k3"] * 7, ["ir_k3"] * 4],
        [
            [[1, 16, 1, 1]],
            [[6, 24, 2, 2]],
            [[6, 32, 3, 2]],
            [[6, 64, 4, 2], [6, 96, 3, 1]],
            [[6, 160, 3, 1], [6, 320, 1, 1]],  # stage 4: box head
        ],
        bbox=[4],
    ),
    "cham_v1a": _arch(
        [32, 2],
        [["ir_k3"], ["ir_k7"] * 2, ["ir_k3"] * 5, ["ir_k5"] * 7 + ["ir_k3"] * 5, ["ir_k3"] * 5, ["ir_k3"] * 3],
        [
            [[1, 24, 1, 1]],
            [[4, 48, 2, 2]],
            [[7, 64, 5, 2]],
            [[12, 56, 7, 2], [8, 88, 5, 1]],
            [[7, 152, 4, 2], [10, 104, 1, 1]],  # stage 4: box head
            [[8, 88, 3, 1]],  # stage 5: RPN head
        ],
        rpn=[5],
        bbox=[4],
    ),
    "cham_v2": _arch(
        [32, 2],
        [["ir_k3"], ["ir_k5"] * 4, ["ir_k7"] * 6, ["ir_k5"] * 3 + ["ir_k3"] * 6, ["ir_k3"] * 7, ["ir_k3"] * 1],
        [
            [[1, 24, 1, 1]],
            [[8, 32, 4, 2]],
            [[5, 48, 6, 2]],
            [[9, 56, 3, 2], [6, 56, 6, 1]],
            [[2, 160, 6, 2], [6, 112, 1, 1]],  # stage 4: box head
            [[6, 56, 1, 1]],  # stage 5: RPN head
        ],
        rpn=[5],
        bbox=[4],
    ),
}


# The searched "cham" architectures, also a group of their own as in the original.
MODEL_ARCH_CHAM: Dict[str, dict] = {name: MODEL_ARCH[name] for name in ("cham_v1a", "cham_v2")}


def add_archs(archs: Dict[str, dict]) -> None:
    """Register more named architectures (a name may be registered once)."""
    for name, arch in archs.items():
        if name in MODEL_ARCH:
            raise KeyError(f"an FBNet architecture named {name!r} already exists")
        MODEL_ARCH[name] = arch
