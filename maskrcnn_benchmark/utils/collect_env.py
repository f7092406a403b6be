"""What the tools log about the software environment."""

import PIL


def get_pil_version() -> str:
    return "\n        Pillow ({})".format(PIL.__version__)


def collect_env_info() -> str:
    """torch's environment report (versions, CUDA, GPUs) plus Pillow's version."""
    from torch.utils.collect_env import get_pretty_env_info

    return get_pretty_env_info() + get_pil_version()
