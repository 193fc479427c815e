package main

// The Vault Transit API of the server: its flag, its mounts and the
// environment block `server --dev` prints for Transit clients.

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api"
	"github.com/kmsledger/kmsledger/cmd/config"
	"github.com/kmsledger/kmsledger/cmd/node"
)

// transitEnclaveFlag serves the Transit mount "transit" for an enclave.
var transitEnclaveFlag = &cli.StringFlag{Name: "transit-enclave", EnvVars: []string{"KMSLEDGER_TRANSIT_ENCLAVE"},
	Usage: "also serve the Vault Transit API at mount \"transit\" for enclave `NAME` (more mounts: transit.mounts in --config)"}

// transitSetup is the Transit configuration of a server.
type transitSetup struct {
	mounts        map[string]string // mount path -> enclave; empty: Transit is off
	disableUpsert bool
	tokenTTL      time.Duration
}

// transitOf merges the configuration file's mounts with --transit-enclave
// (which sets the mount "transit"); --dev without any mount serves
// "transit" for the dev enclave.
func transitOf(conf config.Transit, flagEnclave string, dev bool) (transitSetup, error) {
	t := transitSetup{mounts: maps.Clone(conf.Mounts), disableUpsert: conf.DisableUpsert, tokenTTL: conf.TokenTTL}
	if t.tokenTTL < 0 {
		return t, fmt.Errorf("transit token_ttl %s is negative", t.tokenTTL)
	}
	if t.mounts == nil {
		t.mounts = map[string]string{}
	}
	if flagEnclave != "" {
		t.mounts[api.DefaultTransitMount] = flagEnclave
	}
	if dev && len(t.mounts) == 0 {
		t.mounts[api.DefaultTransitMount] = devEnclave
	}
	for m, enclave := range t.mounts {
		if !api.ValidTransitMount(m) {
			return t, fmt.Errorf("transit mount %q: want segments of letters, digits, '_' and '-' joined by '/', not starting with a path the server uses (kms, admin, sys, auth, …)", m)
		}
		if enclave == "" {
			return t, fmt.Errorf("transit mount %q: no enclave", m)
		}
	}
	return t, nil
}

// configure sets the Transit fields of the API configuration.
func (t transitSetup) configure(c *api.Config) {
	if len(t.mounts) > 0 {
		c.TransitMounts, c.TransitDisableUpsert, c.TransitTokenTTL = t.mounts, t.disableUpsert, t.tokenTTL
	}
}

// enclaves returns the enclaves the mounts serve, sorted, once each.
func (t transitSetup) enclaves() []string {
	return slices.Compact(slices.Sorted(maps.Values(t.mounts)))
}

// printTransitBanner prints the mounts and, in dev mode, the environment
// of the Vault CLI and client libraries (VAULT_ADDR, VAULT_TOKEN,
// VAULT_CACERT), ready to paste.
func printTransitBanner(n *node.Node, t transitSetup, addr string, dev bool) {
	if len(t.mounts) == 0 {
		return
	}
	for _, m := range slices.Sorted(maps.Keys(t.mounts)) {
		fmt.Printf("Vault Transit API: https://%s/v1/%s (enclave %s)\n", addr, m, t.mounts[m])
	}
	if dev {
		fmt.Printf("\nFor Vault Transit clients (vault/bao CLI, SeaweedFS, sops):\n")
		fmt.Printf("export VAULT_ADDR=https://%s\n", addr)
		fmt.Printf("export VAULT_TOKEN=%s\n", n.RootKey)
		if n.CAFile != "" {
			fmt.Printf("export VAULT_CACERT=%s\n", n.CAFile)
		}
	}
}
