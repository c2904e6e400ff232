#!/usr/bin/env python3
"""Benchmark: our OFA engine on PyTorch against ONNX Runtime fp32 and int8 (no reference).

``scripts/bench_ofa.py --engines torch,onnx-fp32,onnx-int8``: one harness, so
that the figures of the two scripts come from the same code. Options are
passed on (``--runs N``, ``--photos DIR``, ``--json FILE``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    script = Path(__file__).resolve().with_name("bench_ofa.py")
    os.execv(sys.executable, [sys.executable, str(script), "--engines", "torch,onnx-fp32,onnx-int8", *sys.argv[1:]])
