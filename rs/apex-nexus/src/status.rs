//! The run folder's `status.json`, rewritten atomically (temporary file, then rename) so a reader never sees half.

use std::path::Path;

/// Writes `value` to `path` atomically.
///
/// # Errors
/// The I/O error.
pub fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}
