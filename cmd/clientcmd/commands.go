package clientcmd

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
)

// clientTimeout bounds each request of a client subcommand.
const clientTimeout = 60 * time.Second

// ErrUsage is wrapped by errors about command-line arguments.
var ErrUsage = errors.New("usage")

// Commands returns new instances of the client subcommands, in
// hyphenated form (add-key) and spaced form (add key). auditLocal, if not
// nil, returns the subcommands of `audit` that work without a server
// (the binary's offline verify and export); they follow the client ones.
func Commands(auditLocal func() []*cli.Command) []*cli.Command {
	all := commandList(auditLocal)
	for _, c := range all {
		c.Category = "client"
	}
	// The spaced forms: "add key NAME" runs "add-key NAME". They get their
	// own command and flag values.
	byName := make(map[string]*cli.Command)
	for _, c := range commandList(auditLocal) {
		byName[c.Name] = c
	}
	parents := []struct{ verb, usage string }{
		{"add", "create an enclave, key, identity or policy"},
		{"rm", "delete an enclave, key, identity or policy"},
		{"ls", "list enclaves, keys, identities or policies"},
		{"stat", "show an enclave, key, identity or policy"},
		{"get", "show an identity or policy"},
		{"set", "assign a policy to an identity"},
	}
	for _, p := range parents {
		parent := &cli.Command{Name: p.verb, Usage: p.usage, Category: "client"}
		switch p.verb {
		case "ls": // as minkms: without a noun, the cluster's nodes (cluster.go)
			parent.Usage += "; without one, the cluster's nodes"
			parent.Action, parent.Flags = lsNodesAction, ConnFlags()
		case "stat": // as minkms: without a noun, the cluster's replication
			parent.Usage += "; without one, the cluster's streams and replicas"
			parent.Action, parent.Flags = statClusterAction, ConnFlags()
		}
		for _, noun := range []string{"enclave", "key", "identity", "policy"} {
			name := p.verb + "-" + noun
			if name == "stat-identity" {
				name = "get-identity"
			}
			if sub := byName[name]; sub != nil {
				sub.Name = noun
				parent.Subcommands = append(parent.Subcommands, sub)
			}
		}
		all = append(all, parent)
	}
	return all
}

// commandList returns new instances of the hyphenated client commands,
// each with the connection flags.
func commandList(auditLocal func() []*cli.Command) []*cli.Command {
	var all []*cli.Command
	for _, group := range [][]*cli.Command{enclaveCommands(), keyCommands(), lifecycleCommands(), identityCommands(), policyCommands(), timeTravelCommands(auditLocal), hsmCommands(), {envCommand()}} {
		for _, c := range group {
			c.Flags = append(c.Flags, ConnFlags()...)
			all = append(all, c)
		}
	}
	return all
}

// enclaveCommands returns new instances of the enclave commands.
func enclaveCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "add-enclave", Usage: "create an enclave", ArgsUsage: "NAME", Action: addEnclaveAction},
		{Name: "rm-enclave", Usage: "delete an enclave", ArgsUsage: "NAME", Action: rmEnclaveAction},
		{Name: "ls-enclave", Usage: "list enclaves", ArgsUsage: "[PREFIX]", Action: lsEnclaveAction},
		{Name: "stat-enclave", Usage: "show an enclave", ArgsUsage: "NAME", Action: statEnclaveAction},
	}
}

// keyCommands returns new instances of the key and crypto commands
// (lifecycle commands are lifecycleCommands).
func keyCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name: "add-key", Usage: "create a key, add a version (--version) or import key material (--import)",
			ArgsUsage: "NAME", Action: addKeyAction,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "type", Usage: "AES256 or ChaCha20 (default: the server's choice)"},
				&cli.BoolFlag{Name: "version", Usage: "add a new version to an existing key (rotate)"},
				&cli.StringFlag{Name: "import", Usage: "import this base64 key material as a new key"},
			},
		},
		{
			Name: "rm-key", Usage: "delete a key version (default: the latest) or the whole key (--all)",
			ArgsUsage: "NAME", Action: rmKeyAction,
			Flags: []cli.Flag{
				&cli.UintFlag{Name: "version", Usage: "the version to delete (default: the latest)"},
				&cli.BoolFlag{Name: "all", Usage: "delete every version of the key"},
				&cli.StringFlag{Name: "schedule", Usage: "do not delete now: mark the key pending deletion for this long (e.g. 7d, 36h); restore-key cancels"},
			},
		},
		{Name: "ls-key", Usage: "list keys", ArgsUsage: "[PREFIX]", Action: lsKeyAction},
		{
			Name: "stat-key", Usage: "show a key version", ArgsUsage: "NAME", Action: statKeyAction,
			Flags: []cli.Flag{&cli.UintFlag{Name: "version", Usage: "the version (default: the latest)"}},
		},
		{
			Name: "keygen", Usage: "generate a data key; print it in plaintext and encrypted (base64)",
			ArgsUsage: "KEY", Action: keygenAction,
			Flags: []cli.Flag{
				&cli.UintFlag{Name: "length", Value: 32, Usage: "data key length in bytes"},
				&cli.StringFlag{Name: "context", Usage: "associated data bound to the ciphertext"},
			},
		},
		{
			Name: "encrypt", Usage: "encrypt a text; print the ciphertext (base64)",
			ArgsUsage: "KEY PLAINTEXT", Action: encryptAction,
			Flags: []cli.Flag{&cli.StringFlag{Name: "context", Usage: "associated data bound to the ciphertext"}},
		},
		{
			Name: "decrypt", Usage: "decrypt a base64 ciphertext; print the plaintext (base64, like keygen)",
			ArgsUsage: "KEY CIPHERTEXT", Action: decryptAction,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "context", Usage: "associated data given at encryption"},
				&cli.BoolFlag{Name: "raw", Usage: "write the plaintext bytes as they are, without newline (for piping)"},
			},
		},
	}
}

// identityCommands returns new instances of the identity commands.
func identityCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name: "add-identity", Usage: "create or replace an identity; without IDENTITY, make a new API key and print it with its identity",
			ArgsUsage: "[IDENTITY]", Action: addIdentityAction,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "admin", Usage: "give the identity the Admin privilege of the enclave"},
				&cli.BoolFlag{Name: "service", Usage: "mark the identity as a service account"},
				&cli.StringSliceFlag{Name: "tag", Usage: "attach a tag KEY=VALUE (repeatable)"},
			},
		},
		{Name: "rm-identity", Usage: "delete an identity", ArgsUsage: "IDENTITY", Action: rmIdentityAction},
		{Name: "ls-identity", Usage: "list identities", ArgsUsage: "[PREFIX]", Action: lsIdentityAction},
		{Name: "get-identity", Usage: "show an identity", ArgsUsage: "IDENTITY", Action: getIdentityAction},
	}
}

// policyCommands returns new instances of the policy commands.
func policyCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "add-policy", Usage: "create or replace a policy from a JSON file", ArgsUsage: "NAME FILE", Action: addPolicyAction},
		{Name: "set-policy", Usage: "assign a policy to an identity", ArgsUsage: "POLICY IDENTITY", Action: setPolicyAction},
		{Name: "rm-policy", Usage: "delete a policy", ArgsUsage: "NAME", Action: rmPolicyAction},
		{Name: "ls-policy", Usage: "list policies", ArgsUsage: "[PREFIX]", Action: lsPolicyAction},
		{Name: "get-policy", Usage: "show a policy with its rules", ArgsUsage: "NAME", Action: getPolicyAction},
		{Name: "stat-policy", Usage: "show a policy's status", ArgsUsage: "NAME", Action: statPolicyAction},
	}
}

// ConnFlags returns new instances of the flags that say how to reach the
// server.
func ConnFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api-key", Aliases: []string{"a"}, EnvVars: []string{"MINIO_KMS_API_KEY"}, Usage: "API key k1:... (prefer the environment variable: flags show in ps)"},
		// minkms's spelling of --api-key in its documentation; hidden.
		&cli.StringFlag{Name: "id", Hidden: true, Usage: "same as --api-key"},
		&cli.StringFlag{Name: "enclave", Aliases: []string{"e"}, EnvVars: []string{"MINIO_KMS_ENCLAVE"}, Usage: "enclave"},
		&cli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"MINIO_KMS_SERVER"}, Value: client.DefaultEndpoint, Usage: "server host:port, comma-separated for several"},
		&cli.BoolFlag{Name: "insecure", Aliases: []string{"k"}, Usage: "do not verify the server certificate"},
		&cli.StringFlag{Name: "ca", EnvVars: []string{"KMSLEDGER_CA_FILE"}, Usage: "PEM file of CA certificates to trust in addition to the system roots"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON"},
	}
}

// Args returns the positional arguments of c, applying any flags given
// after them (urfave/cli stops parsing flags at the first argument), and
// checks that there are between min and max of them.
func Args(c *cli.Context, min, max int) ([]string, error) {
	var pos []string
	in := c.Args().Slice()
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			pos = append(pos, in[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(c.Command.Flags, name)
		if f == nil {
			return nil, fmt.Errorf("%w: unknown flag %s", ErrUsage, a)
		}
		if !hasValue {
			if _, isBool := f.(*cli.BoolFlag); isBool {
				value = "true"
			} else if i+1 < len(in) {
				i++
				value = in[i]
			} else {
				return nil, fmt.Errorf("%w: flag %s needs a value", ErrUsage, a)
			}
		}
		if err := c.Set(f.Names()[0], value); err != nil {
			return nil, fmt.Errorf("%w: flag %s: %w", ErrUsage, a, err)
		}
	}
	if len(pos) < min || len(pos) > max {
		return nil, fmt.Errorf("%w: %s %s", ErrUsage, c.Command.HelpName, c.Command.ArgsUsage)
	}
	return pos, nil
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// apiKey returns the API key of the connection flags: --id (minkms's
// spelling) or --api-key/-a/MINIO_KMS_API_KEY. --id wins over the
// environment variable; --id and --api-key with different keys are
// refused. "" when none is given.
func apiKey(c *cli.Context) (string, error) {
	key, id := c.String("api-key"), c.String("id")
	switch {
	case id == "" || id == key:
		return key, nil
	case key != "" && key != os.Getenv("MINIO_KMS_API_KEY"):
		return "", fmt.Errorf("%w: --id and --api-key give different API keys", ErrUsage)
	}
	return id, nil
}

// serverList returns the endpoints of --server/MINIO_KMS_SERVER.
func serverList(c *cli.Context) []string {
	var endpoints []string
	for _, s := range strings.Split(c.String("server"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			endpoints = append(endpoints, s)
		}
	}
	return endpoints
}

// NewClient builds a client from the connection flags.
func NewClient(c *cli.Context) (*client.Client, error) {
	key, err := apiKey(c)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("%w: no API key: set --api-key or MINIO_KMS_API_KEY", ErrUsage)
	}
	return newClientFor(c, serverList(c), key)
}

// newClientFor builds a client for endpoints with the TLS settings of
// the connection flags; key may be "" (no client certificate).
func newClientFor(c *cli.Context, endpoints []string, key string) (*client.Client, error) {
	conf := client.Config{
		Endpoints:          endpoints,
		APIKey:             key,
		InsecureSkipVerify: c.Bool("insecure"),
		Timeout:            clientTimeout,
	}
	if file := c.String("ca"); file != "" {
		pool, err := loadCAs(file)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	return client.New(conf)
}

// loadCAs returns the system roots plus the certificates of a PEM file.
func loadCAs(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("--ca: no PEM certificate in %s", file)
	}
	return pool, nil
}

// runClient parses between min and max positional arguments, builds a
// client and runs fn with them.
func runClient(c *cli.Context, min, max int, fn func(ctx context.Context, kc *client.Client, args []string) error) error {
	pos, err := Args(c, min, max)
	if err != nil {
		return err
	}
	kc, err := NewClient(c)
	if err != nil {
		return err
	}
	defer kc.Close()
	return fn(c.Context, kc, pos)
}

// PrintJSON writes v as indented JSON, as every command does with --json.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printFields writes label/value lines, aligned.
func printFields(w io.Writer, fields [][2]string) error {
	width := 0
	for _, f := range fields {
		width = max(width, len(f[0]))
	}
	for _, f := range fields {
		if _, err := fmt.Fprintf(w, "%-*s %s\n", width+1, f[0]+":", f[1]); err != nil {
			return err
		}
	}
	return nil
}

// formatTime formats t for text output; "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
