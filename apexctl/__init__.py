"""apexctl: evolve crypto trading strategies offline and run them live on Bybit, on one Rust core."""

from apexctl._ort import use_wheel_library

__version__ = "0.1.0"

# The Rust inference engine loads ONNX Runtime from ORT_DYLIB_PATH on its first ONNX call; default it to the wheel's
# copy so `apexctl` and `_core` work outside `scripts/just` too.
use_wheel_library()
