#!/usr/bin/env bash
# The entrypoint of matrix's Prefect images, run under `tini -g --` (and called by
# path as /opt/prefect/entrypoint.sh by Helm charts and workers). In order:
#   1. ~/.bashrc, where a conda image activates its `prefect` env;
#   2. EXTRA_PIP_PACKAGES, word-split, installed with the installer this image's
#      release line used (MATRIX_EXTRA_INSTALLER, set at build: pip or uv); its output
#      is shown when it fails, and the container exits with its code;
#   3. no command: a banner, then a login shell; otherwise the command, a leading
#      `--` dropped (`docker run IMAGE -- prefect server start`).
set -e

if [ -f ~/.bashrc ]; then
    # shellcheck disable=SC1090  # the user's own file
    . ~/.bashrc
fi

if [ -n "${EXTRA_PIP_PACKAGES:-}" ]; then
    # Word splitting is the point: several packages and specifiers in one variable.
    # shellcheck disable=SC2206
    packages=(${EXTRA_PIP_PACKAGES})
    case "${MATRIX_EXTRA_INSTALLER:-pip}" in
        uv) install=(uv pip install --system) ;;
        *) install=(pip install --no-cache-dir) ;;
    esac
    echo "+${install[*]} ${packages[*]}"
    log=$(mktemp)
    status=0
    "${install[@]}" "${packages[@]}" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$log" >&2
        rm -f "$log"
        echo "EXTRA_PIP_PACKAGES: ${install[0]} failed (exit $status) installing: ${packages[*]}" >&2
        exit "$status"
    fi
    rm -f "$log"
fi

if [ "${1:-}" = "--" ]; then
    shift
fi

if [ "$#" -eq 0 ]; then
    cat <<'BANNER'
  ___ ___ ___ ___ ___ ___ _____
 | _ \ _ \ __| __| __/ __|_   _|
 |  _/   / _|| _|| _| (__  | |
 |_| |_|_\___|_| |___\___| |_|

BANNER
    exec bash --login
fi

exec "$@"
