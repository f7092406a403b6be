"""The compiled ops import on their own: `import maskrcnn_benchmark._C` in a fresh interpreter (the
package imports torch first, whose shared libraries _C links to)."""

import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(not glob.glob(os.path.join(REPO, "maskrcnn_benchmark", "_C*.so")), reason="_C is not built")
def test_import_compiled_ops_in_a_fresh_interpreter():
    code = "import sys, maskrcnn_benchmark._C as C; assert 'torch' in sys.modules; print(hasattr(C, 'nms'))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "True"
