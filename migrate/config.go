// KES server config files (README.md, "Migrating from KES, and the KES
// API").
//
// The whole file must parse as KES would read it, but only three parts are
// used: keystore (where the keys are), policy and admin.identity (for a
// later mapping of KES rights). Unknown sections and fields are ignored.
// Any scalar value that is exactly ${NAME} is replaced by the environment
// variable NAME, which must exist (it may be empty); mapping keys are never
// expanded, and text around ${…} is not expanded.

package migrate

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	// ErrConfig means a KES config file is malformed or inconsistent.
	ErrConfig = errors.New("migrate: invalid KES config")
	// ErrMissingEnv means a config value names an unset environment variable.
	ErrMissingEnv = errors.New("migrate: KES config references an unset environment variable")
)

// Config is the part of a KES server config that a migration uses.
type Config struct {
	Admin    string            // admin.identity: a hex identity, or a placeholder disabling admin.
	Policies map[string]Policy // policy: name → rules.
	Keystore Keystore
}

// Policy is one entry of a KES config's policy section.
type Policy struct {
	Allow      []string // Path patterns, e.g. "/v1/key/generate/my-key*".
	Deny       []string
	Identities []string // Hex SHA-256 identities assigned this policy.
}

// Keystore says which key store a KES config uses. Kind is "fs", "vault",
// the dotted name of another backend ("aws.secretsmanager", …) that this
// package cannot read, or "" for none (KES then keeps keys in memory).
type Keystore struct {
	Kind  string
	FS    *FSConfig    // Set when Kind is "fs".
	Vault *VaultConfig // Set when Kind is "vault".
}

// FSConfig is keystore.fs.
type FSConfig struct {
	Path string
}

// VaultConfig is keystore.vault, with KES's defaults applied.
type VaultConfig struct {
	Endpoint   string      // Base URL, e.g. https://vault:8200.
	Engine     string      // K/V mount path; default "kv".
	Version    string      // "v1" (default) or "v2".
	Namespace  string      // Enterprise namespace; "" or "/" is the root.
	Prefix     string      // Path prefix of every key under the engine.
	Token      string      // Not in KES configs: a token the caller may set instead of a login.
	AppRole    *AppRole    // AppRole login, if configured.
	Kubernetes *Kubernetes // Kubernetes login, if configured.
	Transit    *Transit    // Values are Vault transit ciphertexts, if set.
	TLS        VaultTLS
}

// AppRole is keystore.vault.approle.
type AppRole struct {
	Namespace string // Namespace of the login; default the Vault namespace.
	Engine    string // Auth mount; default "approle".
	ID        string // role_id.
	Secret    string // secret_id.
}

// Kubernetes is keystore.vault.kubernetes.
type Kubernetes struct {
	Namespace string
	Engine    string // Auth mount; default "kubernetes".
	Role      string
	JWT       string // The service-account token, or a path to a file holding it.
}

// Transit is keystore.vault.transit.
type Transit struct {
	Engine string // Transit mount; default "transit".
	Key    string
}

// VaultTLS is keystore.vault.tls: file paths (see NewVaultHTTPClient).
type VaultTLS struct {
	Key  string // Client private key (PEM).
	Cert string // Client certificate (PEM).
	CA   string // CA certificate file or directory; "" = system roots.
}

type fileConfig struct {
	Version string `yaml:"version"`
	Address string `yaml:"address"`
	Admin   struct {
		Identity string `yaml:"identity"`
	} `yaml:"admin"`
	TLS   yaml.Node `yaml:"tls"`
	API   yaml.Node `yaml:"api"`
	Cache yaml.Node `yaml:"cache"`
	Log   yaml.Node `yaml:"log"`
	Keys  []struct {
		Name string `yaml:"name"`
	} `yaml:"keys"`
	Policy map[string]struct {
		Allow      []string `yaml:"allow"`
		Deny       []string `yaml:"deny"`
		Identities []string `yaml:"identities"`
	} `yaml:"policy"`
	Keystore map[string]yaml.Node `yaml:"keystore"`
}

type fileVault struct {
	Endpoint  string `yaml:"endpoint"`
	Engine    string `yaml:"engine"`
	Version   string `yaml:"version"`
	Namespace string `yaml:"namespace"`
	Prefix    string `yaml:"prefix"`
	Token     string `yaml:"token"`
	AppRole   *struct {
		Namespace string `yaml:"namespace"`
		Engine    string `yaml:"engine"`
		ID        string `yaml:"id"`
		Secret    string `yaml:"secret"`
	} `yaml:"approle"`
	Kubernetes *struct {
		Namespace string `yaml:"namespace"`
		Engine    string `yaml:"engine"`
		Role      string `yaml:"role"`
		JWT       string `yaml:"jwt"`
	} `yaml:"kubernetes"`
	Transit *struct {
		Engine string `yaml:"engine"`
		Key    string `yaml:"key"`
	} `yaml:"transit"`
	TLS VaultTLS `yaml:"tls"`
}

// nestedBackends are keystore entries whose backend is one level deeper.
var nestedBackends = map[string]bool{
	"fortanix": true, "aws": true, "gemalto": true, "gcp": true, "azure": true, "entrust": true,
}

// ReadConfig reads a KES server config. getenv looks up environment
// variables (pass a wrapper of os.LookupEnv). Errors wrap ErrConfig or
// ErrMissingEnv and name the offending variable or field.
func ReadConfig(r io.Reader, getenv func(string) (string, bool)) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("migrate: read KES config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrConfig)
	}
	var missing []string
	expandEnv(&doc, getenv, &missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingEnv, strings.Join(missing, ", "))
	}
	var fc fileConfig
	if err := doc.Decode(&fc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if fc.Version != "" && fc.Version != "v1" {
		return nil, fmt.Errorf("%w: version %q, want v1", ErrConfig, fc.Version)
	}
	c := &Config{Admin: fc.Admin.Identity, Policies: make(map[string]Policy, len(fc.Policy))}
	for name, p := range fc.Policy {
		c.Policies[name] = Policy{Allow: p.Allow, Deny: p.Deny, Identities: p.Identities}
	}
	if c.Keystore, err = readKeystore(fc.Keystore); err != nil {
		return nil, err
	}
	return c, nil
}

func readKeystore(m map[string]yaml.Node) (Keystore, error) {
	var kinds []string
	var node yaml.Node
	for name, n := range m {
		if !nestedBackends[name] {
			kinds, node = append(kinds, name), n
			continue
		}
		var sub map[string]yaml.Node
		if err := n.Decode(&sub); err != nil {
			return Keystore{}, fmt.Errorf("%w: keystore.%s: %v", ErrConfig, name, err)
		}
		for s, sn := range sub {
			if sn.Kind != 0 && sn.Tag != "!!null" {
				kinds = append(kinds, name+"."+s)
			}
		}
	}
	slices.Sort(kinds)
	switch len(kinds) {
	case 0:
		return Keystore{}, nil
	case 1:
	default:
		return Keystore{}, fmt.Errorf("%w: keystore has %d backends (%s), want one", ErrConfig, len(kinds), strings.Join(kinds, ", "))
	}
	ks := Keystore{Kind: kinds[0]}
	switch ks.Kind {
	case "fs":
		var fs FSConfig
		if err := node.Decode(&struct {
			Path *string `yaml:"path"`
		}{&fs.Path}); err != nil {
			return Keystore{}, fmt.Errorf("%w: keystore.fs: %v", ErrConfig, err)
		}
		if fs.Path == "" {
			return Keystore{}, fmt.Errorf("%w: keystore.fs.path is empty", ErrConfig)
		}
		ks.FS = &fs
	case "vault":
		var fv fileVault
		if err := node.Decode(&fv); err != nil {
			return Keystore{}, fmt.Errorf("%w: keystore.vault: %v", ErrConfig, err)
		}
		v, err := vaultConfig(fv)
		if err != nil {
			return Keystore{}, err
		}
		ks.Vault = v
	}
	return ks, nil
}

func vaultConfig(fv fileVault) (*VaultConfig, error) {
	v := &VaultConfig{
		Endpoint: fv.Endpoint, Engine: cmp(fv.Engine, "kv"), Version: cmp(fv.Version, "v1"),
		Namespace: fv.Namespace, Prefix: fv.Prefix, Token: fv.Token, TLS: fv.TLS,
	}
	if v.Endpoint == "" {
		return nil, fmt.Errorf("%w: keystore.vault.endpoint is empty", ErrConfig)
	}
	if v.Version != "v1" && v.Version != "v2" {
		return nil, fmt.Errorf("%w: keystore.vault.version %q, want v1 or v2", ErrConfig, v.Version)
	}
	if a := fv.AppRole; a != nil {
		v.AppRole = &AppRole{Namespace: a.Namespace, Engine: cmp(a.Engine, "approle"), ID: a.ID, Secret: a.Secret}
	}
	if k := fv.Kubernetes; k != nil {
		v.Kubernetes = &Kubernetes{Namespace: k.Namespace, Engine: cmp(k.Engine, "kubernetes"), Role: k.Role, JWT: k.JWT}
	}
	if t := fv.Transit; t != nil {
		v.Transit = &Transit{Engine: cmp(t.Engine, "transit"), Key: t.Key}
	}
	return v, nil
}

// cmp returns s, or def if s is empty.
func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// expandEnv replaces every scalar value that is exactly ${NAME}, recording
// unset names in missing (with their line).
func expandEnv(n *yaml.Node, getenv func(string) (string, bool), missing *[]string) {
	switch n.Kind {
	case yaml.ScalarNode:
		s := strings.TrimSpace(n.Value)
		if !strings.HasPrefix(s, "${") || !strings.HasSuffix(s, "}") {
			return
		}
		name := strings.TrimSpace(s[2 : len(s)-1])
		v, ok := getenv(name)
		if !ok {
			*missing = append(*missing, fmt.Sprintf("${%s} (line %d)", name, n.Line))
			return
		}
		n.Value, n.Tag, n.Style = v, "", 0 // Re-resolved as a plain scalar.
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 { // Values only, never keys.
			expandEnv(n.Content[i], getenv, missing)
		}
	default:
		for _, c := range n.Content {
			expandEnv(c, getenv, missing)
		}
	}
}
