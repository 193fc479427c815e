#!/usr/bin/env bash
# Installs the stock nats-server at the version the main go.mod embeds
# (run as processes by testdata/interop/cluster for the --nats-url and
# hostile-route tests) into the same cache folder as .ci/minio-bins.sh,
# and prints that folder. A stamp file records the pinned version; the
# binary is (re)installed when it is missing or the stamp differs.
#
#   bin=$(.ci/nats-bins.sh) && "$bin/nats-server" --version
set -euo pipefail

NATS_MOD=github.com/nats-io/nats-server/v2
NATS_VERSION=v2.15.2

gocache=$(go env GOCACHE)
dir=${KMSLEDGER_INTEROP_BIN_DIR:-$(dirname "$gocache")/kmsledger-interop/bin}
stamp="$dir/nats.stamp"
want="$NATS_MOD@$NATS_VERSION"

mkdir -p "$dir"
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$dir/nats-server" ]; }; then
	echo "nats-bins: installing $want into $dir" >&2
	start=$(date +%s)
	rm -f "$stamp" "$dir/nats-server"
	GOBIN="$dir" GOWORK=off go install "$want" >&2
	echo "nats-bins: nats-server built in $(( $(date +%s) - start ))s" >&2
	printf '%s\n' "$want" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
fi
echo "$dir"
