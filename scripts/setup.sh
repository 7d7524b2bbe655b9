#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: Python environment from the lockfile, Debian's copy of
# Fashion-MNIST where apt-get is usable (else the download stage fetches it), and DVC's git repo.
# `setup.sh test` also installs what the tests use: headless Chromium and its WebDriver, and
# PostgreSQL's server (a throwaway cluster backs an MLflow server in one test).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -m uv --version >/dev/null 2>&1; then
    python3 -m pip install --quiet "uv>=0.9"
fi
# Compiled once here: where PYTHONDONTWRITEBYTECODE is set, every process (each DVC stage, each
# test's subprocess) would otherwise compile TensorFlow's sources again (22 s instead of 5 s).
python3 -m uv sync --frozen --quiet --compile-bytecode

can_apt() { command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; }
apt_updated=
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -qq && apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

fmnist=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$fmnist" ] && can_apt; then
    apt_install dataset-fashion-mnist \
        || echo "setup: could not install dataset-fashion-mnist; the download stage will fetch it" >&2
fi

# A font with CJK glyphs, for class names in the report's legends (matplotlib falls back to it).
if ! ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1 && can_apt; then
    apt_install fonts-wqy-microhei \
        || echo "setup: could not install fonts-wqy-microhei; CJK class names will show as boxes" >&2
fi

if [ "${1:-}" = test ] && ! command -v chromedriver >/dev/null && can_apt; then
    apt_install chromium chromium-driver \
        || echo "setup: could not install chromium; the browser test of the report will skip" >&2
fi

if [ "${1:-}" = test ] && ! command -v initdb >/dev/null \
        && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && can_apt; then
    apt_install postgresql \
        || echo "setup: could not install postgresql; the MLflow-on-PostgreSQL test will skip" >&2
fi

# DVC works inside a git repository; a source tarball has none.
if [ ! -d .git ]; then
    git init -q && git add -A && git -c user.name=latentlab -c user.email=latentlab@localhost commit -qm "initial import"
fi
