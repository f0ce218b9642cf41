#!/usr/bin/env bash
# `just setup`: idempotent install of everything the project needs into .venv; seconds when nothing changed.
set -euo pipefail
root=$(cd -- "$(dirname -- "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"
python="$venv/bin/python"
say() { printf 'setup: %s\n' "$*" >&2; }

[ -x "$python" ] || { say "creating $venv"; python3 -m venv "$venv"; }

# Python dependencies: reinstalled only when pyproject.toml changes (stamp = hash of the file).
stamp="$venv/.apexctl-deps-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    say "installing Python dependencies from pyproject.toml (runtime + dev)"
    mapfile -t deps < <("$python" - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
    print(dep)
PY
)
    # uv installs from a hard-linked cache: torch's 3 GB of CUDA wheels are copied once per machine, not per clone.
    [ -x "$venv/bin/uv" ] || "$python" -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
    "$venv/bin/uv" pip install --quiet --python "$python" "${deps[@]}"
    rm -f "$venv"/.apexctl-deps-*
    touch "$stamp"
else
    say "Python dependencies up to date"
fi

# Bytecode, written once here: uv does not compile what it installs, and where PYTHONDONTWRITEBYTECODE is set (CI
# machines) no process ever would, so every apexctl start compiled polars', scikit-learn's and the Forge's sources
# again (`apexctl evolve --help` took 1.8 s instead of 0.5 s). A file in another Python version's syntax (torch has a
# few) stays uncompiled; that is not an error.
bytecode="$venv/.apexctl-bytecode"
if [ ! -f "$bytecode" ] || [ "$stamp" -nt "$bytecode" ]; then
    say "compiling the installed packages to bytecode (once per install, about 30 s)"
    site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    "$python" -m compileall -q -j 0 "$site" >"$venv/.apexctl-bytecode.log" 2>&1 || true
    touch "$bytecode"
fi
"$python" -m compileall -q -j 0 apexctl scripts tests

# The extension: cargo decides what to rebuild; maturin installs it into the venv as an editable package.
say "building apexctl._core (release) into $venv; cargo target dir: ${CARGO_TARGET_DIR:-$root/target}"
log="$venv/.apexctl-build.log"
if ! VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --release >"$log" 2>&1; then
    cat "$log" >&2
    say "building the extension failed (full log above, also in $log)"
    exit 1
fi
"$python" -c "import apexctl._core" || { say "apexctl._core failed to import after the build"; exit 1; }

# Rust binaries (the live engine and the local venue, once they exist).
if grep -qs '^\[\[bin\]\]\|^\[\[bin\]\]' rs/*/Cargo.toml || ls rs/*/src/main.rs >/dev/null 2>&1; then
    say "building Rust binaries (release)"
    cargo build --release --locked --workspace --bins --quiet
    # Linked into the venv, so `apexctl venue` (and anything on the venv's PATH) finds the binaries.
    for main in rs/*/src/main.rs; do
        bin=$(basename "$(dirname "$(dirname "$main")")")
        ln -sf "${CARGO_TARGET_DIR:-$root/target}/release/$bin" "$venv/bin/$bin"
    done
fi
say "ready: $("$venv/bin/apexctl" --version)"
