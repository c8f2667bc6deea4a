#!/usr/bin/env bash
# The commit of a Prefect release, read from its tag in a checkout of Prefect (with
# its tags): 3.4.25 finds the tag 3.4.25 or v3.4.25. Prints the full commit hash; a
# version with no such tag is one error line and exit 1.
#
#   scripts/prefect-commit.sh CHECKOUT VERSION
set -euo pipefail

checkout=${1:?usage: prefect-commit.sh CHECKOUT VERSION}
version=${2:?usage: prefect-commit.sh CHECKOUT VERSION}
version=${version#[vV]}
for tag in "$version" "v$version"; do
    if commit=$(git -C "$checkout" rev-parse --verify --quiet "refs/tags/$tag^{commit}"); then
        echo "$commit"
        exit 0
    fi
done
echo "::error::Prefect has no release tag $version (nor v$version): check the version, or fetch the tags" >&2
exit 1
