#!/usr/bin/env bash
# `just bench`: Rust criterion benches (quick mode) then every side-by-side Python benchmark in this folder.
set -euo pipefail
root=$(cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root"
python="$root/.venv/bin/python"
echo "== Rust (criterion, --quick) =="
for manifest in rs/*/Cargo.toml; do
    crate=$(basename "$(dirname "$manifest")")
    [ -d "rs/$crate/benches" ] || continue
    echo "-- $crate"
    cargo bench --locked -p "$crate" --quiet -- --quick 2>&1 | grep -E '^[a-z_0-9/ -]+$|time:|thrpt:' || true
done
echo
echo "== Python side by side =="
for script in scripts/bench/*.py; do
    [ "$(basename "$script")" = common.py ] && continue
    echo "-- $(basename "$script")"
    (cd scripts/bench && "$python" "$(basename "$script")")
    echo
done
