#!/usr/bin/env bash
# Build Prefect's distributions from a checkout as Prefect's own image builds do:
#
# - prefect-client (3.2.3 on, where client/pyproject.toml exists): Prefect's
#   client/build_client.sh stages a copy of the checkout in $TMPDIR with the server
#   and CLI removed and the client's pyproject.toml in place, and `uv build --sdist`
#   builds it there, as client/Dockerfile does. It runs first, on the checkout as
#   cloned: the staged copy then holds no UI build or node_modules.
# - prefect: the UI bundles (each into the package folder that serves it), then an
#   sdist, as Prefect's Dockerfile builds it.
#
# Both versions come from git (versioneer or versioningit), so the checkout needs its
# tags, and must be the same. Prints the version on stdout; OUT_DIR gets the sdists
# (prefect-V.tar.gz, and prefect_client-V.tar.gz where the commit has a client build),
# each image's `matrix build --dist OUT_DIR` picks its own.
#
#   scripts/prefect-dist.sh CHECKOUT OUT_DIR
set -euo pipefail

checkout=${1:?usage: prefect-dist.sh CHECKOUT OUT_DIR}
out=${2:?usage: prefect-dist.sh CHECKOUT OUT_DIR}
checkout=$(cd "$checkout" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Builds an sdist in $1 into $out; prints the file built (exactly one new one).
build_sdist() {
    local before after built
    before=$(find "$out" -maxdepth 1 -name '*.tar.gz' | sort)
    (cd "$1" && uv build --sdist --out-dir "$out" >&2)
    after=$(find "$out" -maxdepth 1 -name '*.tar.gz' | sort)
    built=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
    if [ "$(printf '%s\n' "$built" | grep -c .)" != 1 ]; then
        echo "prefect-dist: expected one new sdist in $out, found: ${built:-none}" >&2
        exit 1
    fi
    printf '%s\n' "$built"
}

# The version of an sdist: its own metadata (PKG-INFO), not its file name, which
# normalizes differently across build backends.
sdist_version() {
    python3 - "$1" <<'PY'
import sys
import tarfile
from email.parser import Parser

with tarfile.open(sys.argv[1]) as archive:
    member = next(
        m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
    )
    print(Parser().parsestr(archive.extractfile(member).read().decode())["Version"])
PY
}

client=
if [ -f "$checkout/client/build_client.sh" ] && [ -f "$checkout/client/pyproject.toml" ]; then
    echo "building prefect-client with client/build_client.sh" >&2
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    # CI: the script skips its local smoke test (which wants a Prefect Cloud account),
    # as it does in Prefect's workflows.
    (cd "$checkout" && TMPDIR=$stage CI=true sh client/build_client.sh >&2)
    client=$(build_sdist "$stage")
fi

# UI source folder -> where the package serves it from, across Prefect's history:
# orion-ui (2.0 to 2.7), ui (2.8 on), ui-v2 (3.x, next to ui).
bundles=(
    "orion-ui:src/prefect/orion/ui"
    "ui:src/prefect/server/ui"
    "ui-v2:src/prefect/server/ui-v2"
)
for bundle in "${bundles[@]}"; do
    source_dir=$checkout/${bundle%%:*}
    target=$checkout/${bundle#*:}
    [ -f "$source_dir/package.json" ] || continue
    echo "building the UI in ${bundle%%:*}" >&2
    (cd "$source_dir" && npm ci --no-audit --no-fund --legacy-peer-deps >&2 && npm run build >&2)
    rm -rf "$target"
    mkdir -p "$(dirname "$target")"
    cp -R "$source_dir/dist" "$target"
done

version=$(sdist_version "$(build_sdist "$checkout")")
if [ -n "$client" ]; then
    client_version=$(sdist_version "$client")
    if [ "$client_version" != "$version" ]; then
        echo "prefect-dist: prefect-client built as $client_version, prefect as $version" >&2
        exit 1
    fi
fi
echo "$version"
