#!/usr/bin/env bash
# Installs the pinned MinIO server and mc client (AGPL; never linked into
# kmsledger) into a cache folder beside the Go build cache, so CI keeps them
# between runs, and prints that folder. A stamp file records the pinned
# versions; a binary is (re)installed when it is missing or the stamp differs.
# The first build of MinIO takes minutes; later runs take a second.
#
#   bin=$(.ci/minio-bins.sh) && "$bin/minio" --version
set -euo pipefail

MINIO_MOD=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_MOD=github.com/minio/mc
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9

gocache=$(go env GOCACHE)
dir=${KMSLEDGER_INTEROP_BIN_DIR:-$(dirname "$gocache")/kmsledger-interop/bin}
stamp="$dir/versions.stamp"
want="$MINIO_MOD@$MINIO_VERSION $MC_MOD@$MC_VERSION"

mkdir -p "$dir"

# pinned NAME MOD VERSION: true when $dir/NAME was built from MOD@VERSION.
pinned() {
	[ -x "$dir/$1" ] && go version -m "$dir/$1" 2>/dev/null |
		awk -v mod="$2" -v ver="$3" '$1 == "mod" && $2 == mod && $3 == ver { ok = 1 } END { exit !ok }'
}

install() { # NAME MOD VERSION
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/$1" ]; then
		return
	fi
	if pinned "$1" "$2" "$3"; then
		return
	fi
	echo "minio-bins: installing $2@$3 into $dir (takes minutes the first time)" >&2
	start=$(date +%s)
	rm -f "$stamp" "$dir/$1"
	GOBIN="$dir" GOWORK=off go install "$2@$3" >&2
	echo "minio-bins: $1 built in $(( $(date +%s) - start ))s" >&2
}

install minio "$MINIO_MOD" "$MINIO_VERSION"
install mc "$MC_MOD" "$MC_VERSION"
printf '%s\n' "$want" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
echo "$dir"
