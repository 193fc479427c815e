// Package clientcmd holds the client subcommands of the kmsledger binary:
// the commands that talk to a running kmsledger (or any minkms-compatible
// server) over HTTPS with an API key, with the same flags and environment
// variables as MinIO (MINIO_KMS_SERVER, MINIO_KMS_ENCLAVE,
// MINIO_KMS_API_KEY): enclaves, keys and their lifecycle, identities,
// policies, HSMs of a node, time travel (state, who-can, audit diff,
// events, tail), the request audit (audit requests) and env.
//
// It owns the connection flags (ConnFlags, NewClient), the positional
// argument parsing every command of the binary shares (Args, ErrUsage),
// and the text and JSON output of the client commands (the golden files
// of the binary, cmd/kmsledger/testdata, are written by PrintKeyInfo,
// PrintKeyList, PrintPolicy and PrintJSON).
//
// It may import api/client, api/wire, the standard library and
// urfave/cli, nothing else of this module (the import-rule test,
// cmd/importrules, keeps it so): the client commands never link the
// server. Package main (cmd/kmsledger) adds the server, the offline
// commands and migrate.
package clientcmd
