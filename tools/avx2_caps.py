"""Run a command with every library held to its AVX2 code paths, so an AVX-512 machine computes
what an AVX2-only CPU would (issue 22). `.ci/run` reruns the tests marked `cpu_numbers` so:

    python -m tools.avx2_caps python -m pytest -q -m cpu_numbers tests

Before it runs the command it checks, in a child process under the caps, that NumPy and OpenCV
really dropped their AVX-512 paths (the names a library accepts change between its versions),
and stops naming the one that did not.
"""
from __future__ import annotations

import os
import subprocess
import sys

AVX2_CAPS = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",                                # TensorFlow's oneDNN kernels
    "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX512-CLX",               # OpenCV (MTCNN, resizes, warps)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's dispatch targets
    "OPENBLAS_CORETYPE": "Haswell",                              # OpenBLAS (NumPy, SciPy)
}
# prints the AVX-512 paths NumPy and OpenCV still take: NumPy's enabled dispatch targets above
# AVX2, OpenCV's dispatched features not marked '?' (disabled)
STILL_ON = """
import cv2
try:
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
except ImportError:   # NumPy 1.x
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
numpy = [t for t in __cpu_dispatch__ if t != "X86_V3" and __cpu_features__.get(t)]
opencv = [f for f in cv2.getCPUFeaturesLine().split() if "AVX512" in f and not f.endswith("?")]
print(" ".join([f"NumPy:{t}" for t in numpy] + [f"OpenCV:{f}" for f in opencv]))
"""


def still_on(env: dict) -> list[str]:
    """The AVX-512 code paths that NumPy and OpenCV keep under `env`."""
    out = subprocess.run([sys.executable, "-c", STILL_ON], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    env = {**os.environ, **AVX2_CAPS}
    left = still_on(env)
    if left:
        sys.exit(f"tools/avx2_caps.py: {', '.join(left)} still on under {AVX2_CAPS}: this "
                 f"library version names its features otherwise; update AVX2_CAPS")
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main(sys.argv[1:])
