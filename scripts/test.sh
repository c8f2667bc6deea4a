#!/usr/bin/env bash
# Install what the tests need, then lint and run the whole suite.
# The tests start their own registries and builds on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Real parts the tests use: a registry (distribution 2.8), podman for
# multi-platform builds, skopeo as a benchmark baseline, htpasswd for basic auth,
# and shellcheck for actionlint (without it actionlint silently skips the run: scripts),
# debootstrap for the stand-in python:3.11-slim the real-image tests build on.
need=()
for pair in docker-registry:docker-registry podman:podman skopeo:skopeo \
    htpasswd:apache2-utils shellcheck:shellcheck debootstrap:debootstrap; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The whole suite builds real images on stand-in bases that take a minute of debootstrap
# on a fresh machine: made meanwhile, the tests that need them wait for them (a file lock).
if [ $# -eq 0 ]; then
    python3 -m tests.support.standin_base >"${TMPDIR:-/tmp}/matrix-standins.log" 2>&1 &
fi
python3 -m pip install -q -e '.[test]'
python3 -m ruff check matrix tests bench
python3 -m ruff format --check matrix tests bench
# The workflows: actionlint (runs shellcheck on run: scripts when it is installed),
# and zizmor with its strictest persona, offline: no GitHub API, no network at all.
actionlint
zizmor --offline --no-progress --persona=auditor .github/workflows
# Two workers: the real-image builds of one xdist group each go to one worker, the quick
# tests fill in around them. The ten slowest tests are listed at the end.
python3 -m pytest -n 2 --dist loadgroup --durations=10 "$@"
