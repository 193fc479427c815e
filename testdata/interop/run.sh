#!/bin/sh
# Runs every package of this interoperability module, among them the kms-go
# SDK tests against a freshly built `kmsledger server --dev` and the
# end-to-end tests with the real MinIO server, mc and KES (package ./minio).
# The pinned MinIO, mc and KES are built once by .ci/minio-bins.sh and cached
# beside the Go build cache; set KMSLEDGER_MINIO_BIN, KMSLEDGER_MC_BIN and
# KMSLEDGER_KES_BIN to use other binaries. sops (for ./transit) is built once
# by .ci/transit-bins.sh, SeaweedFS's weed by .ci/seaweedfs-bins.sh, into the
# same cache; KMSLEDGER_SOPS_BIN and KMSLEDGER_WEED_BIN override them.
# Package ./cluster runs three-node clusters (and stock nats-server
# processes, built once by .ci/nats-bins.sh; KMSLEDGER_NATS_SERVER_BIN
# overrides it); KMSLEDGER_CLUSTER_REPS (default 20) sets how often it
# kills the stream leader. It takes about 16 minutes, hence the timeout.
# Extra arguments go to `go test`, e.g. -run TestMinIO.
set -eu
cd "$(dirname "$0")"
if [ -z "${KMSLEDGER_MINIO_BIN:-}" ] || [ -z "${KMSLEDGER_MC_BIN:-}" ] || [ -z "${KMSLEDGER_KES_BIN:-}" ]; then
	bins=$(../../.ci/minio-bins.sh)
	export KMSLEDGER_MINIO_BIN="${KMSLEDGER_MINIO_BIN:-$bins/minio}" \
		KMSLEDGER_MC_BIN="${KMSLEDGER_MC_BIN:-$bins/mc}" \
		KMSLEDGER_KES_BIN="${KMSLEDGER_KES_BIN:-$bins/kes}"
fi
if [ -z "${KMSLEDGER_SOPS_BIN:-}" ]; then
	export KMSLEDGER_SOPS_BIN="$(../../.ci/transit-bins.sh)/sops"
fi
if [ -z "${KMSLEDGER_WEED_BIN:-}" ]; then
	export KMSLEDGER_WEED_BIN="$(../../.ci/seaweedfs-bins.sh)/weed"
fi
# The three-node process tests (./cluster) run after the others, alone,
# since their failover bounds are timed (about 16 minutes);
# KMSLEDGER_CLUSTER_TESTS=0 leaves them out.
go test -count=1 -timeout 30m -v "$@" $(go list ./... | grep -v '/cluster$')
if [ "${KMSLEDGER_CLUSTER_TESTS:-1}" != 0 ]; then
	if [ -z "${KMSLEDGER_NATS_SERVER_BIN:-}" ]; then
		export KMSLEDGER_NATS_SERVER_BIN="$(../../.ci/nats-bins.sh)/nats-server"
	fi
	exec go test -count=1 -timeout 30m -v "$@" ./cluster
fi
