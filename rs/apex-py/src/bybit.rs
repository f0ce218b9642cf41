//! Bindings of `apex-bybit`: lines of V5 messages (order-book archives, WebSocket recordings) into table columns,
//! and REST request signing.

use std::convert::Infallible;

use apex_bybit::{LineParser, ParseError};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyDict;

use crate::errors::{DataError, IntoPyErr, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, bybit_parse_lines, bybit_sign);
    Ok(())
}

impl IntoPyErr for Infallible {
    fn into_py_err(self) -> PyErr {
        match self {}
    }
}

/// `X-BAPI-SIGN` of a V5 REST request: lowercase hex HMAC-SHA256 under `api_secret` of
/// `timestamp_ms + api_key + recv_window_ms + payload`, where `payload` is the exact query string (GET) or raw JSON
/// body (POST) sent.
#[pyfunction]
fn bybit_sign(
    py: Python<'_>,
    api_secret: &str,
    api_key: &str,
    timestamp_ms: i64,
    recv_window_ms: i64,
    payload: &str,
) -> PyResult<String> {
    run_detached(py, || {
        Ok::<_, Infallible>(apex_bybit::sign::rest_signature(
            api_secret,
            api_key,
            timestamp_ms,
            recv_window_ms,
            payload,
        ))
    })
}

impl IntoPyErr for ParseError {
    fn into_py_err(self) -> PyErr {
        DataError::new_err(self.to_string())
    }
}

/// Parses newline-separated V5 messages into `book` and `trades` columns (NumPy arrays; `symbol` holds codes into
/// `symbols`; trade ids as Arrow-style `trade_id_data` UTF-8 bytes (uint8) + `trade_id_offsets`). Other messages are
/// counted in `skipped`. Errors name the line, counted from `first_line`. Large inputs are parsed in parallel pieces.
#[pyfunction]
#[pyo3(signature = (data, first_line=1))]
fn bybit_parse_lines<'py>(py: Python<'py>, data: PyBackedBytes, first_line: u64) -> PyResult<Bound<'py, PyDict>> {
    // About 1 MiB per piece at least, so small inputs are not split for nothing.
    let pieces = (data.len() >> 20).clamp(1, 2 * rayon::current_num_threads());
    let parser = run_detached(py, || LineParser::parse_in_pieces(&data, first_line, pieces))?;
    let LineParser { symbols, book, trades, lines, skipped, .. } = parser;
    let out = PyDict::new(py);
    // Each column moves into a NumPy array under its field's name.
    macro_rules! arrays {
        ($table:ident; $($column:ident),+) => {{
            let dict = PyDict::new(py);
            $(dict.set_item(stringify!($column), $table.$column.into_pyarray(py))?;)+
            dict
        }};
    }
    out.set_item("book", arrays!(book; ts, symbol, kind, side, price, size, update_id, seq))?;
    let t = arrays!(trades; ts, symbol, side, price, size);
    t.set_item("trade_id_data", trades.trade_id_data.into_bytes().into_pyarray(py))?;
    t.set_item("trade_id_offsets", trades.trade_id_offsets.into_pyarray(py))?;
    out.set_item("trades", t)?;
    out.set_item("symbols", symbols)?;
    out.set_item("lines", lines)?;
    out.set_item("skipped", skipped)?;
    Ok(out)
}
