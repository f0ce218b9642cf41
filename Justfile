# apexctl tasks. `scripts/just` alone lists them; `scripts/just ready` runs exactly what CI runs.

set shell := ["bash", "-euo", "pipefail", "-c"]
set export

venv := justfile_directory() / ".venv"
PATH := venv / "bin" + ":" + env_var("PATH")
CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", home_directory() / ".cache/apexctl/target")
VIRTUAL_ENV := venv
# The ONNX Runtime library the Rust engine loads (ort `load-dynamic`): the onnxruntime wheel's, unless already set.
ORT_DYLIB_PATH := env_var_or_default("ORT_DYLIB_PATH", `.venv/bin/python apexctl/_ort.py 2>/dev/null || true`)

# List the recipes
default:
    @just --list --unsorted

# Install or update everything into .venv: Python deps, the Rust extension (release), the Rust binaries
setup:
    @scripts/setup.sh

# Run the whole pipeline on the embedded default data (no network); outputs under OUT
pipeline OUT="runs/pipeline": setup
    @scripts/pipeline.sh "{{OUT}}"

# The loop on the local venue from the pipeline's bundles: trade for DURATION -> judge -> evolve and export replacements
loop RUN="runs/loop" CONFIG="examples/nexus/local.toml" DURATION="60s": setup
    @scripts/loop.sh "{{RUN}}" "{{CONFIG}}" "{{DURATION}}"

# judge a ledger, then evolve and export a replacement for every pending recycling request (cron-safe: see README)
recycle LEDGER REPORT="": setup
    @scripts/recycle.sh "{{LEDGER}}" "{{REPORT}}"

# All tests, Rust and Python, plus lint: what CI runs
test: setup lint test-rust test-python

# Rust tests of every library crate
test-rust:
    # On a fresh clone ORT_DYLIB_PATH was evaluated before setup made the venv: look it up again now.
    ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(python apexctl/_ort.py)}" cargo test --locked --workspace --exclude apex-py --quiet

# Python tests (unit, property, CLI, end to end)
test-python: setup
    python -m pytest

# cargo fmt, clippy -D warnings, ruff, ruff format, and the extension's type stubs
lint: setup
    cargo fmt --all --check
    cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
    ruff check .
    ruff format --check .
    python -m mypy.stubtest apexctl._core --allowlist scripts/stubtest-allowlist.txt

# Format Rust and Python sources in place
fmt:
    cargo fmt --all
    ruff format .
    ruff check --fix .

# The venue soak: 10 minutes of accelerated market with every fault, the apex-bybit client rebuilding books (CI runs 30 s)
soak SECONDS="600":
    SOAK_SECONDS={{SECONDS}} cargo test --locked --release -p apex-venue --test soak -- --nocapture

# Side-by-side benchmarks (Rust criterion + Python peers); prints the ratios
bench: setup
    @scripts/bench/run.sh

# Exactly what CI runs
ready: test
