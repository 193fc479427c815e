package clientcmd

import (
	"crypto/x509"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
)

// PointUsage describes a point of the ledger on the command line.
const PointUsage = pointUsage

// ParsePoint reads a point of the ledger given as flag's value s.
func ParsePoint(flag, s string, now time.Time) (client.Point, error) { return parsePoint(flag, s, now) }

// APIKey returns the API key of the connection flags.
func APIKey(c *cli.Context) (string, error) { return apiKey(c) }

// ServerList returns the servers of the connection flags.
func ServerList(c *cli.Context) []string { return serverList(c) }

// LoadCAs reads a PEM file of CA certificates into a pool (with the
// system roots).
func LoadCAs(file string) (*x509.CertPool, error) { return loadCAs(file) }
