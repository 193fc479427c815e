package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the server configuration file (`kmsledger server --config
// FILE`), YAML with `version: v1`. ${NAME} in a value is replaced by the
// environment variable NAME after parsing, so the variable is taken
// verbatim (a PIN may hold '#' or ': '); a missing variable is an error.
// Flags and KMSLEDGER_* variables override the file.
type Config struct {
	Version string `yaml:"version"`
	Address string `yaml:"address"`
	Dir     string `yaml:"dir"`
	TLS     struct {
		Cert     string `yaml:"cert"`
		Key      string `yaml:"key"`
		ClientCA string `yaml:"client_ca"` // optional: only client certificates issued by it are accepted
	} `yaml:"tls"`
	HSM []HSM `yaml:"hsm"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"` // text or json
	} `yaml:"log"`
	Audit struct {
		Interval time.Duration `yaml:"interval"`
		Batch    int           `yaml:"batch"`
		Sync     bool          `yaml:"sync"`
		Wait     time.Duration `yaml:"wait"`
	} `yaml:"audit"`
	KES struct {
		Enclave string `yaml:"enclave"`
	} `yaml:"kes"`
	Cache struct {
		Keys int `yaml:"keys"` // unsealed key versions kept in memory (0 = the default, 1,000,000)
	} `yaml:"cache"`
	Memory struct {
		Limit string `yaml:"limit"` // the Go runtime's soft memory limit (ParseMemoryLimit); "" = the default
	} `yaml:"memory"`
	Cluster Cluster `yaml:"cluster"` // cluster.go
	NATS    NATS    `yaml:"nats"`
	// Snapshot tunes the projection snapshots kept in DIR/snapshots
	// (zero values: the defaults).
	Snapshot struct {
		Disabled bool          `yaml:"disabled"`
		Events   uint64        `yaml:"events"`
		Interval time.Duration `yaml:"interval"`
		Keep     int           `yaml:"keep"`
	} `yaml:"snapshot"`
	Transit Transit `yaml:"transit"`
}

// Transit configures the Vault Transit API (README.md, "Vault Transit
// API"): which mount paths serve which enclave.
type Transit struct {
	// Mounts maps a mount path ("transit", "team/sops") to an enclave.
	Mounts map[string]string `yaml:"mounts"`
	// DisableUpsert: encrypting to a missing key never creates it.
	DisableUpsert bool `yaml:"disable_upsert"`
	// TokenTTL is the lifetime of the tokens logins issue (0: 768h).
	TokenTTL time.Duration `yaml:"token_ttl"`
}

// HSM is one root-of-trust backend; exactly one of Soft, PKCS11 and
// Remote is set. Name identifies it in add-hsm/rm-hsm/ls-hsm.
type HSM struct {
	Name   string  `yaml:"name"`
	Soft   *Soft   `yaml:"soft"`
	PKCS11 *PKCS11 `yaml:"pkcs11"`
	Remote *Remote `yaml:"minkms"` // another kmsledger (or minkms) deployment; the key is minkms's spelling
}

// Soft is a software HSM key hsm:aes256:<base64>.
type Soft struct {
	Key string `yaml:"key"`
}

// PKCS11 names a key on a PKCS#11 token. The PIN comes from the
// environment (pin: ${VAR}) or a file (pin_file), never from a flag.
type PKCS11 struct {
	Module  string `yaml:"module"`
	Token   string `yaml:"token"`
	Slot    *uint  `yaml:"slot"`
	PIN     string `yaml:"pin"`
	PINFile string `yaml:"pin_file"`
	Key     string `yaml:"key"`
}

// Remote is a key of another key manager used as HSM (hsm/remotekms), the same
// shape as minkms's hsm.NAME.minkms section. A server without a scheme
// is reached over HTTPS (it always is). The API key is auth.key, as
// minkms writes it, or auth_key.
type Remote struct {
	Server  []string `yaml:"server"`
	Enclave string   `yaml:"enclave"`
	Key     string   `yaml:"key"`
	AuthKey string   `yaml:"auth_key"`
	Auth    *struct {
		Key string `yaml:"key"`
	} `yaml:"auth"`
	CA string `yaml:"ca"` // PEM file to trust for the remote server (default: the system roots)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} with the value of NAME in every scalar of
// the YAML tree n (not in comments), recording missing variables (an
// empty value is allowed). An expanded plain scalar is resolved again, so
// `slot: ${SLOT}` is still a number, except that it is never null.
func expandEnv(n *yaml.Node, getenv func(string) (string, bool), missing *[]string) {
	if n.Kind == yaml.ScalarNode && envRef.MatchString(n.Value) {
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := getenv(name)
			if !ok {
				*missing = append(*missing, name)
			}
			return v
		})
		if n.Style == 0 {
			n.Tag = "" // resolved again: a number or boolean stays one
			switch n.Value {
			case "", "~", "null", "Null", "NULL":
				n.Tag = "!!str" // but a PIN "null" is not empty
			}
		}
	}
	for _, c := range n.Content {
		expandEnv(c, getenv, missing)
	}
}

// Read parses a configuration file. getenv looks up the variables of
// ${NAME} references (os.LookupEnv in the server).
func Read(r io.Reader, getenv func(string) (string, bool)) (*Config, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	// Parse, expand the values, and encode again (the encoder quotes what
	// needs quoting) to decode with unknown fields refused.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var missing []string
	expandEnv(&doc, getenv, &missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("config: environment variable %s is not set", strings.Join(missing, ", "))
	}
	if err := hsmMapToList(&doc); err != nil { // minkms's map form (minkms.go)
		return nil, err
	}
	var c Config
	if doc.Kind == 0 {
		return &c, c.Validate()
	}
	if b, err = yaml.Marshal(&doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &c, c.Validate()
}

// ReadFile parses the configuration file at path.
func ReadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Read(f, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks the configuration for mistakes that would only show
// later.
func (c *Config) Validate() error {
	if c.Version != "v1" {
		return fmt.Errorf("config: version %q: want v1", c.Version)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("config: tls.cert and tls.key go together")
	}
	if c.Log.Format != "" && c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if err := ValidKeyCache(c.Cache.Keys); err != nil {
		return fmt.Errorf("config: cache.keys: %w", err)
	}
	if _, err := ParseMemoryLimit(c.Memory.Limit); err != nil {
		return fmt.Errorf("config: memory.limit: %w", err)
	}
	names := map[string]bool{}
	for i, h := range c.HSM {
		n := 0
		for _, set := range []bool{h.Soft != nil, h.PKCS11 != nil, h.Remote != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("config: hsm[%d]: want exactly one of soft, pkcs11, minkms", i)
		}
		if h.Name == "" {
			return fmt.Errorf("config: hsm[%d]: name is missing", i)
		}
		if names[h.Name] {
			return fmt.Errorf("config: hsm name %q used twice", h.Name)
		}
		names[h.Name] = true
		if p := h.PKCS11; p != nil && p.PIN != "" && p.PINFile != "" {
			return fmt.Errorf("config: hsm %q: pin and pin_file exclude each other", h.Name)
		}
		if m := h.Remote; m != nil && m.Auth != nil {
			if m.AuthKey != "" && m.AuthKey != m.Auth.Key {
				return fmt.Errorf("config: hsm %q: auth.key and auth_key exclude each other", h.Name)
			}
			m.AuthKey = m.Auth.Key
		}
	}
	return nil
}

// PrependSoftKey puts the software HSM key of the flag or
// KMSLEDGER_HSM_KEY ("" = none) in front of the configured HSMs, named
// "soft", and validates the result.
func (c *Config) PrependSoftKey(hsmKey string) error {
	if hsmKey != "" {
		c.HSM = append([]HSM{{Name: "soft", Soft: &Soft{Key: hsmKey}}}, c.HSM...)
	}
	return c.Validate()
}

// MaxKeyCache is the largest key cache (cache.keys, --key-cache): a
// cached version costs about 140 bytes, and its slot 8 bytes from the
// time the cache first fills it.
const MaxKeyCache = 10_000_000

// ValidKeyCache checks a number of unsealed key versions to keep in
// memory: 0 (the default) to MaxKeyCache.
func ValidKeyCache(n int) error {
	if n < 0 || n > MaxKeyCache {
		return fmt.Errorf("%d key versions: want 0 (the default) to %d", n, MaxKeyCache)
	}
	return nil
}
