// Clustering: the embedded server as one node of a NATS cluster, or a
// connection to an existing NATS cluster instead of an embedded server.
//
// Every route and client connection of a cluster node is TLS with mutual
// verification and a password, all derived from one shared secret
// (ClusterConfig.Secret): with HKDF-SHA256 the secret gives an Ed25519
// CA key, the route password and the client password. Each node makes a
// fresh Ed25519 certificate for itself at every start, signed by that CA.
// A peer is accepted only if its certificate chains to the CA (checked
// on both sides of every route) and it sends the route password; a NATS
// client only with a certificate of the CA and the client password. So
// nothing without the secret can join the cluster, vote, or read a
// stream, whatever network it is on.

package ledger

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterSecretLen is the length of ClusterConfig.Secret.
const ClusterSecretLen = 32

// DefaultClusterName is the NATS cluster name when ClusterConfig.Name is
// empty.
const DefaultClusterName = "kmsledger"

// ClusterConfig makes the embedded server one node of a NATS cluster.
type ClusterConfig struct {
	Name      string   // NATS cluster name, the same on every node ("" = DefaultClusterName)
	Node      string   // this node's name, unique in the cluster
	Listen    string   // host:port of the route listener
	Advertise string   // host:port other nodes dial, if not Listen's (optional)
	Routes    []string // route URLs (nats://host:port) of the nodes; this node's own may be in the list
	Secret    []byte   // ClusterSecretLen bytes shared by every node (see the file comment)

	// Replicas of every stream: 1, 3 or 5; 0 means 3 when the cluster has
	// three or more nodes (Routes with this node), else 1.
	Replicas int
}

// ExternalConfig connects to an existing NATS cluster (with JetStream)
// instead of starting an embedded server.
type ExternalConfig struct {
	URLs           []string // nats:// or tls:// URLs of the servers
	CredsFile      string   // user JWT and nkey seed (.creds), optional
	User, Password string   // optional
	CAFile         string   // PEM of the CAs that sign the servers' certificates, optional
	CertFile       string   // client certificate (PEM), optional; with KeyFile
	KeyFile        string
	Replicas       int // 1, 3 or 5; 0 = 3
}

// maxForwardPayload is a cluster node's largest NATS message.
const maxForwardPayload = 8 << 20

// Usernames of the derived credentials.
const (
	routeUser  = "kmsledger-route"
	clientUser = "kmsledger"
	systemUser = "kmsledger-system"
)

// clusterCred is what every node derives from the shared secret.
type clusterCred struct {
	pool           *x509.CertPool
	leaf           tls.Certificate
	routePassword  string
	clientPassword string
	systemPassword string
}

// derive returns the HKDF-SHA256 output of secret for label.
func derive(secret []byte, label string, n int) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "kmsledger cluster v1 "+label, n)
}

// newClusterCred derives the CA and passwords from secret and makes this
// node's certificate, named node.
func newClusterCred(secret []byte, node string) (*clusterCred, error) {
	if len(secret) != ClusterSecretLen {
		return nil, fmt.Errorf("ledger: cluster secret: want %d bytes, have %d: %w", ClusterSecretLen, len(secret), ErrInvalid)
	}
	seed, err := derive(secret, "ca", ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	caKey := ed25519.NewKeyFromSeed(seed)
	clear(seed)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kmsledger cluster CA"},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2120, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("ledger: cluster CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("ledger: cluster CA: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	leafTmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: node},
		DNSNames:     []string{node},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("ledger: node certificate: %w", err)
	}
	c := &clusterCred{pool: x509.NewCertPool(),
		leaf: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: priv}}
	c.pool.AddCert(ca)
	for _, p := range []struct {
		dst   *string
		label string
	}{{&c.routePassword, "route password"}, {&c.clientPassword, "client password"}, {&c.systemPassword, "system password"}} {
		b, err := derive(secret, p.label, 32)
		if err != nil {
			return nil, err
		}
		*p.dst = hex.EncodeToString(b)
	}
	return c, nil
}

// tlsConfig is the TLS configuration of routes and of the client port:
// TLS 1.3, this node's certificate, and a peer certificate that chains to
// the cluster CA required and verified on both sides. Peers are named by
// the CA, not by host names (nodes are dialled by address), so the chain
// is verified in VerifyConnection rather than against a server name.
func (c *clusterCred) tlsConfig() *tls.Config {
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("ledger: cluster peer sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: c.pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("ledger: cluster peer certificate: %w", err)
		}
		return nil
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{c.leaf},
		ClientAuth:         tls.RequireAndVerifyClientCert,
		ClientCAs:          c.pool,
		RootCAs:            c.pool,
		InsecureSkipVerify: true, // the chain is checked by VerifyConnection, on both sides
		VerifyConnection:   verify,
	}
}

// clusterOptions makes opts those of a cluster node and returns the
// credential the in-process connections use.
func clusterOptions(opts *server.Options, cc *ClusterConfig, clientListen string) (*clusterCred, error) {
	if !ValidName(cc.Node) {
		return nil, fmt.Errorf("ledger: cluster: node name %q: %w", cc.Node, ErrInvalid)
	}
	name := cc.Name
	if name == "" {
		name = DefaultClusterName
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("ledger: cluster: name %q: %w", name, ErrInvalid)
	}
	cred, err := newClusterCred(cc.Secret, cc.Node)
	if err != nil {
		return nil, err
	}
	host, port, err := hostPort(cc.Listen, "cluster listen")
	if err != nil {
		return nil, err
	}
	routes, err := routeURLs(cc.Routes, cred.routePassword)
	if err != nil {
		return nil, err
	}
	opts.ServerName = cc.Node
	opts.Cluster = server.ClusterOpts{
		Name: name, Host: host, Port: port, Advertise: cc.Advertise,
		Username: routeUser, Password: cred.routePassword,
		TLSConfig: cred.tlsConfig(), TLSTimeout: 5,
	}
	opts.Routes = routes
	// A forwarded batch (cluster_writer.go) is JSON with base64 bodies:
	// up to MaxBatch events of a kms request, above the default 1 MB.
	opts.MaxPayload = maxForwardPayload
	// A clustered server needs its client listener (routing waits for
	// it); it is TLS with the same CA, and password protected.
	opts.DontListen = false
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	if clientListen != "" {
		if opts.Host, opts.Port, err = hostPort(clientListen, "listen"); err != nil {
			return nil, err
		}
	}
	opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = cred.tlsConfig(), true, 5
	sys := server.NewAccount(server.DEFAULT_SYSTEM_ACCOUNT)
	opts.Accounts = []*server.Account{sys}
	opts.SystemAccount = server.DEFAULT_SYSTEM_ACCOUNT
	opts.Users = []*server.User{
		{Username: clientUser, Password: cred.clientPassword},
		{Username: systemUser, Password: cred.systemPassword, Account: sys},
	}
	return cred, nil
}

// hostPort parses host:port; port 0 becomes a random port.
func hostPort(hp, what string) (string, int, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, fmt.Errorf("ledger: %s %q: %w", what, hp, ErrInvalid)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("ledger: %s %q: bad port: %w", what, hp, ErrInvalid)
	}
	if p == 0 {
		p = server.RANDOM_PORT // 0 would mean the default port
	}
	return host, p, nil
}

// routeURLs parses the route URLs and adds the route credentials to each
// (outbound routes authenticate with the URL's user info only).
func routeURLs(routes []string, password string) ([]*url.URL, error) {
	var out []*url.URL
	seen := map[string]bool{}
	for _, r := range routes {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "nats-route" && u.Scheme != "tls") || u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("ledger: route %q: want nats://host:port: %w", r, ErrInvalid)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("ledger: route %q: only nats://host:port (credentials come from the cluster key): %w", r, ErrInvalid)
		}
		if seen[u.Host] {
			continue
		}
		seen[u.Host] = true
		out = append(out, &url.URL{Scheme: "nats", Host: u.Host, User: url.UserPassword(routeUser, password)})
	}
	return out, nil
}

// ClusterSize is the number of nodes a cluster configuration names: the
// distinct route hosts, plus this node if its route listener is not among
// them.
func (cc *ClusterConfig) ClusterSize() int {
	hosts := map[string]bool{}
	for _, r := range cc.Routes {
		if u, err := url.Parse(strings.TrimSpace(r)); err == nil && u.Host != "" {
			hosts[u.Host] = true
		}
	}
	self := false
	for h := range hosts {
		if isSelf(h, cc.Listen, cc.Advertise) {
			self = true
		}
	}
	if !self {
		return len(hosts) + 1
	}
	return len(hosts)
}

// isSelf reports whether route host:port is this node's route listener
// (its listen or advertised address, or a local address on its port).
func isSelf(route, listen, advertise string) bool {
	if route == listen || (advertise != "" && route == advertise) {
		return true
	}
	rh, rp, err := net.SplitHostPort(route)
	if err != nil {
		return false
	}
	lh, lp, err := net.SplitHostPort(listen)
	if err != nil || rp != lp {
		return false
	}
	if lh != "" && lh != "0.0.0.0" && lh != "::" {
		return rh == lh
	}
	ip := net.ParseIP(rh)
	if ip == nil {
		return rh == "localhost"
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(addrs, func(a net.Addr) bool {
		n, ok := a.(*net.IPNet)
		return ok && n.IP.Equal(ip)
	})
}

// replicas returns the replica count of the streams and checks it.
func replicas(want, nodes int) (int, error) {
	switch want {
	case 0:
		if nodes >= 3 {
			return 3, nil
		}
		return 1, nil
	case 1, 3, 5:
		if want > nodes && nodes > 0 {
			return 0, fmt.Errorf("ledger: %d replicas but %d nodes: %w", want, nodes, ErrInvalid)
		}
		return want, nil
	}
	return 0, fmt.Errorf("ledger: replicas %d: want 1, 3 or 5: %w", want, ErrInvalid)
}
