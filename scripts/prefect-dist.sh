#!/usr/bin/env bash
# Build Prefect's distribution from a checkout as Prefect's own image build does: the
# UI bundles first (each into the package folder that serves it), then an sdist whose
# version Prefect's build backend reads from git (versioneer or versioningit, so the
# checkout needs its tags). Prints the distribution's version on stdout.
#
#   scripts/prefect-dist.sh CHECKOUT OUT_DIR
set -euo pipefail

checkout=${1:?usage: prefect-dist.sh CHECKOUT OUT_DIR}
out=${2:?usage: prefect-dist.sh CHECKOUT OUT_DIR}
checkout=$(cd "$checkout" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

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

# An sdist, as Prefect's Dockerfile builds one (its images install that sdist).
before=$(find "$out" -maxdepth 1 -name '*.tar.gz' | sort)
(cd "$checkout" && uv build --sdist --out-dir "$out" >&2)
after=$(find "$out" -maxdepth 1 -name '*.tar.gz' | sort)
built=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
if [ "$(printf '%s\n' "$built" | grep -c .)" != 1 ]; then
    echo "prefect-dist: expected one new sdist in $out, found: ${built:-none}" >&2
    exit 1
fi
# The version is the sdist's own metadata (PKG-INFO), not its file name, which
# normalizes differently across build backends.
python3 - "$built" <<'PY'
import sys
import tarfile
from email.parser import Parser

with tarfile.open(sys.argv[1]) as archive:
    member = next(
        m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
    )
    print(Parser().parsestr(archive.extractfile(member).read().decode())["Version"])
PY
