#!/bin/sh
# Runs the kms-go SDK interoperability tests against a freshly built
# `kmsledger server --dev`. Extra arguments go to `go test`, e.g. -run TestMinIO.
set -eu
cd "$(dirname "$0")"
exec go test -count=1 -timeout 10m -v "$@" ./...
