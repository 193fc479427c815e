#!/usr/bin/env bash
# Installs the pinned SeaweedFS `weed` (Apache-2.0; only run as a process by
# testdata/interop/transit) into the same cache folder as .ci/minio-bins.sh
# and prints that folder. SeaweedFS's go.mod has replace directives, which
# `go install MOD@VERSION` refuses, so it is built from a throw-away module
# that requires it. A binary is (re)installed when it is missing or was
# built from another version. The first build takes about ten minutes.
#
#   bin=$(.ci/seaweedfs-bins.sh) && "$bin/weed" version
set -euo pipefail

WEED_MOD=github.com/seaweedfs/seaweedfs
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6

gocache=$(go env GOCACHE)
dir=${KMSLEDGER_INTEROP_BIN_DIR:-$(dirname "$gocache")/kmsledger-interop/bin}
mkdir -p "$dir"

pinned() {
	[ -x "$dir/$1" ] && go version -m "$dir/$1" 2>/dev/null |
		awk -v mod="$2" -v ver="$3" '($1 == "mod" || $1 == "dep") && $2 == mod && $3 == ver { ok = 1 } END { exit !ok }'
}

if ! pinned weed "$WEED_MOD" "$WEED_VERSION"; then
	echo "seaweedfs-bins: installing $WEED_MOD@$WEED_VERSION into $dir (takes about ten minutes the first time)" >&2
	start=$(date +%s)
	rm -f "$dir/weed"
	build=$(mktemp -d)
	trap 'rm -rf "$build"' EXIT
	printf 'module kmsledger-interop/weed-build\n\ngo 1.26\n\nrequire %s %s\n' "$WEED_MOD" "$WEED_VERSION" > "$build/go.mod"
	(cd "$build" && GOBIN="$dir" GOWORK=off GOFLAGS=-mod=mod go install "$WEED_MOD/weed") >&2
	echo "seaweedfs-bins: weed built in $(( $(date +%s) - start ))s" >&2
fi
echo "$dir"
