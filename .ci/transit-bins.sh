#!/usr/bin/env bash
# Installs the pinned sops (MPL-2.0; only run as a process by
# testdata/interop/transit) into the same cache folder as .ci/minio-bins.sh
# and prints that folder. A binary is (re)installed when it is missing or
# was built from another version. The first build takes a few minutes.
#
#   bin=$(.ci/transit-bins.sh) && "$bin/sops" --version
set -euo pipefail

SOPS_MOD=github.com/getsops/sops/v3
SOPS_VERSION=v3.13.3

gocache=$(go env GOCACHE)
dir=${KMSLEDGER_INTEROP_BIN_DIR:-$(dirname "$gocache")/kmsledger-interop/bin}
mkdir -p "$dir"

# pinned NAME MOD VERSION: true when $dir/NAME was built from MOD@VERSION.
pinned() {
	[ -x "$dir/$1" ] && go version -m "$dir/$1" 2>/dev/null |
		awk -v mod="$2" -v ver="$3" '$1 == "mod" && $2 == mod && $3 == ver { ok = 1 } END { exit !ok }'
}

if ! pinned sops "$SOPS_MOD" "$SOPS_VERSION"; then
	echo "transit-bins: installing $SOPS_MOD@$SOPS_VERSION into $dir (takes minutes the first time)" >&2
	start=$(date +%s)
	rm -f "$dir/sops"
	GOBIN="$dir" GOWORK=off go install "$SOPS_MOD/cmd/sops@$SOPS_VERSION" >&2
	echo "transit-bins: sops built in $(( $(date +%s) - start ))s" >&2
fi
echo "$dir"
