"""Type stubs of the Rust extension apexctl._core (checked against the built module by mypy stubtest)."""

from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

class ApexError(Exception): ...
class DataError(ApexError): ...
class InternalError(ApexError): ...

def book_replay(
    ts: npt.NDArray[np.int64],
    symbol: npt.NDArray[np.uint32],
    kind: npt.NDArray[np.uint8],
    side: npt.NDArray[np.int8],
    price: npt.NDArray[np.float64],
    size: npt.NDArray[np.float64],
    update_id: npt.NDArray[np.int64],
    seq: npt.NDArray[np.int64],
    *,
    price_decimals: int | None = None,
    qty_decimals: int | None = None,
    checksum_depth: int = 25,
) -> dict[str, Any]: ...
def bybit_parse_lines(data: bytes, first_line: int = 1) -> dict[str, Any]: ...
