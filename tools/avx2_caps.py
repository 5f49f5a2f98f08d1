"""Run a command with every library held to its AVX2 code paths, so an AVX-512 machine computes
what an AVX2-only CPU would (issue 22). `.ci/run` reruns the tests marked `cpu_numbers` so:

    python -m tools.avx2_caps python -m pytest -q -m cpu_numbers tests
"""
from __future__ import annotations

import os
import sys

AVX2_CAPS = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",                                # TensorFlow's oneDNN kernels
    "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-CLX",               # OpenCV (MTCNN, resizes, warps)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's dispatch targets
    "OPENBLAS_CORETYPE": "Haswell",                              # OpenBLAS (NumPy, SciPy)
}


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    os.execvpe(argv[0], argv, {**os.environ, **AVX2_CAPS})


if __name__ == "__main__":
    main(sys.argv[1:])
