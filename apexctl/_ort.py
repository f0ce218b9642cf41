"""Finds libonnxruntime in the installed `onnxruntime` wheel for the Rust engine (`ort` loads it via ORT_DYLIB_PATH).

Importable without importing onnxruntime (only its location is looked up), and runnable as a script: the Justfile
runs `python apexctl/_ort.py` to export ORT_DYLIB_PATH for cargo tests, benchmarks and the CLI.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

VARIABLE = "ORT_DYLIB_PATH"


def wheel_library() -> Path | None:
    """The ONNX Runtime shared library shipped in the onnxruntime wheel's `capi/` folder, or None if not installed."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
    candidates = sorted(
        p
        for pattern in ("libonnxruntime.so*", "libonnxruntime*.dylib", "onnxruntime.dll")
        for p in capi.glob(pattern)
        if "providers" not in p.name
    )
    return candidates[-1] if candidates else None


def use_wheel_library() -> None:
    """Points ORT_DYLIB_PATH at the wheel's library unless the user already set it (read on the first ONNX call)."""
    if os.environ.get(VARIABLE):
        return
    library = wheel_library()
    if library is not None:
        os.environ[VARIABLE] = str(library)


if __name__ == "__main__":
    found = wheel_library()
    print(found if found is not None else "")
