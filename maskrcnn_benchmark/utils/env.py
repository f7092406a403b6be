"""Per-site environment set-up, as in the original: when $TORCH_DETECTRON_ENV_MODULE names a Python
file, importing this module runs that file's setup_environment() (e.g. to set paths or threads on a
cluster). Without the variable nothing happens. The original's tools/train_net.py imports it first."""

import os

from .imports import import_file

ENV_MODULE_VARIABLE = "TORCH_DETECTRON_ENV_MODULE"


def setup_environment() -> None:
    """Run the custom set-up of $TORCH_DETECTRON_ENV_MODULE, if set."""
    custom_module_path = os.environ.get(ENV_MODULE_VARIABLE)
    if custom_module_path:
        setup_custom_environment(custom_module_path)


def setup_custom_environment(custom_module_path: str) -> None:
    """Load the Python file `custom_module_path` and call its setup_environment()."""
    module = import_file("maskrcnn_benchmark.utils.env.custom_module", custom_module_path)
    setup = getattr(module, "setup_environment", None)
    if not callable(setup):
        raise AttributeError(
            f"{custom_module_path} (${ENV_MODULE_VARIABLE}) must define a callable setup_environment()"
        )
    setup()


setup_environment()  # on import, as the original did
