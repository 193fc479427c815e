#!/usr/bin/env bash
# Installs the pinned MinIO server, mc client and KES server (AGPL; never
# linked into kmsledger, only run as processes by testdata/interop) into a
# cache folder beside the Go build cache, so CI keeps them between runs, and
# prints that folder. A stamp file records the pinned versions; a binary is
# (re)installed when it is missing or the stamp differs.
# The first build of MinIO takes minutes; KES about a minute; later runs
# take a second.
#
#   bin=$(.ci/minio-bins.sh) && "$bin/minio" --version && "$bin/kes" --version
set -euo pipefail

MINIO_MOD=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_MOD=github.com/minio/mc
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
# KES v0.24.0 (2025-01-13) is the newest KES release the module proxy
# serves (later releases are tagged by date, which is no module version).
# It writes the protobuf key-store format, with HMAC keys (spec kes.md §4).
KES_MOD=github.com/minio/kes
KES_VERSION=v0.24.0

gocache=$(go env GOCACHE)
dir=${KMSLEDGER_INTEROP_BIN_DIR:-$(dirname "$gocache")/kmsledger-interop/bin}
stamp="$dir/versions.stamp"
want="$MINIO_MOD@$MINIO_VERSION $MC_MOD@$MC_VERSION $KES_MOD@$KES_VERSION"

mkdir -p "$dir"

# pinned NAME MOD VERSION: true when $dir/NAME was built from MOD@VERSION.
pinned() {
	[ -x "$dir/$1" ] && go version -m "$dir/$1" 2>/dev/null |
		awk -v mod="$2" -v ver="$3" '$1 == "mod" && $2 == mod && $3 == ver { ok = 1 } END { exit !ok }'
}

# current NAME MOD VERSION: true when $dir/NAME needs no (re)install.
current() {
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/$1" ]; then
		return 0
	fi
	pinned "$1" "$2" "$3"
}

install() { # NAME MOD VERSION
	if current "$1" "$2" "$3"; then
		return
	fi
	echo "minio-bins: installing $2@$3 into $dir (takes minutes the first time)" >&2
	start=$(date +%s)
	rm -f "$stamp" "$dir/$1"
	GOBIN="$dir" GOWORK=off go install "$2@$3" >&2
	echo "minio-bins: $1 built in $(( $(date +%s) - start ))s" >&2
}

# install_required NAME MOD VERSION PKG: builds PKG of MOD@VERSION from a
# throw-away module that requires it. `go install MOD/PKG@VERSION` would
# also look up the module's deprecation through its version list, which
# the module proxy refuses for github.com/minio/kes (403); a plain
# requirement needs only the pinned version.
install_required() {
	if current "$1" "$2" "$3"; then
		return
	fi
	echo "minio-bins: installing $2@$3 into $dir (takes a minute the first time)" >&2
	start=$(date +%s)
	rm -f "$stamp" "$dir/$1"
	build=$(mktemp -d)
	printf 'module kmsledger-interop/%s-build\n\ngo 1.21\n\nrequire %s %s\n' "$1" "$2" "$3" > "$build/go.mod"
	if ! (cd "$build" && GOBIN="$dir" GOWORK=off GOFLAGS=-mod=mod go install "$2/$4") >&2; then
		rm -rf "$build"
		exit 1
	fi
	rm -rf "$build"
	echo "minio-bins: $1 built in $(( $(date +%s) - start ))s" >&2
}

install minio "$MINIO_MOD" "$MINIO_VERSION"
install mc "$MC_MOD" "$MC_VERSION"
install_required kes "$KES_MOD" "$KES_VERSION" cmd/kes
printf '%s\n' "$want" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
echo "$dir"
