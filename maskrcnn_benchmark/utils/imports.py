"""Import a Python module from a file path (used for cfg.PATHS_CATALOG)."""

import importlib
import importlib.util
import os
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


_BUILTIN_CATALOG_MODULE = "maskrcnn_benchmark.config.paths_catalog"


def import_paths_catalog(file_path: str) -> ModuleType:
    """The paths catalog module of cfg.PATHS_CATALOG. The built-in file is imported normally (not
    re-executed), so that datasets registered with DatasetCatalog.register_coco in the running
    program are kept; a catalog file of the user's is loaded like the original did."""
    builtin = importlib.import_module(_BUILTIN_CATALOG_MODULE)
    if os.path.realpath(file_path) == os.path.realpath(builtin.__file__):
        return builtin
    if not os.path.isfile(file_path):
        raise FileNotFoundError(f"PATHS_CATALOG not found: {file_path}")
    return import_file(_BUILTIN_CATALOG_MODULE, file_path, True)
