"""Import a Python module from a file path (used for cfg.PATHS_CATALOG)."""
import importlib.util
import sys
from types import ModuleType


def import_file(module_name: str, file_path: str, make_importable: bool = False) -> ModuleType:
    """Load `file_path` as a module named `module_name`; register it in sys.modules if asked."""
    spec = importlib.util.spec_from_file_location(module_name, file_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {module_name!r} from {file_path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if make_importable:
        sys.modules[module_name] = module
    return module
