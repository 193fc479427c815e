package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
)

// The cluster key is the credential of a cluster: ledger.ClusterSecretLen
// random bytes from which every node derives the TLS certificates and
// passwords of its routes and client port (ledger/cluster.go). It is
// kept in a file sealed under the cluster's HSMs (one sealing per HSM),
// so the file alone opens nothing: a node opens it with its own HSMs
// before it starts its NATS server, and a node whose HSMs cannot open it
// refuses to start, having joined nothing and written nothing.

// clusterKeyVersion is the format of the cluster key file.
const clusterKeyVersion = 1

// clusterKeyAAD binds a sealing to its use.
const clusterKeyAAD = "kmsledger cluster key v1"

// maxClusterKeyFile bounds the file read.
const maxClusterKeyFile = 64 << 10

// ClusterKeyFile is the JSON form of a sealed cluster key.
type ClusterKeyFile struct {
	Version  int              `json:"version"`
	Sealings []ClusterSealing `json:"sealings"`
}

// ClusterSealing is the cluster key sealed under one HSM.
type ClusterSealing struct {
	HSM    string `json:"hsm"`    // the HSM's configured name
	KeyID  string `json:"key_id"` // its key id (hsm.Wrapper.KeyID)
	Sealed []byte `json:"sealed"`
}

// ErrClusterKey reports a cluster key file this node cannot open.
var ErrClusterKey = errors.New("node: cluster key")

// NewClusterKey makes a random cluster key and seals it under every HSM
// in hsms; it returns the file's content.
func NewClusterKey(ctx context.Context, hsms []commands.NamedHSM) ([]byte, error) {
	if len(hsms) == 0 {
		return nil, fmt.Errorf("%w: no HSM to seal it under", ErrClusterKey)
	}
	secret := make([]byte, ledger.ClusterSecretLen)
	defer clear(secret)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	f := ClusterKeyFile{Version: clusterKeyVersion}
	for _, h := range hsms {
		sealed, err := h.W.Wrap(ctx, secret, []byte(clusterKeyAAD))
		if err != nil {
			return nil, fmt.Errorf("%w: seal under HSM %q: %w", ErrClusterKey, h.Name, err)
		}
		f.Sealings = append(f.Sealings, ClusterSealing{HSM: h.Name, KeyID: h.W.KeyID(), Sealed: sealed})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// OpenClusterKey unseals the cluster key file at path with the first of
// hsms that holds a sealing of it.
func OpenClusterKey(ctx context.Context, path string, hsms []commands.NamedHSM) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClusterKey, err)
	}
	defer fh.Close()
	b := make([]byte, maxClusterKeyFile+1)
	n, _ := fh.Read(b)
	if n > maxClusterKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrClusterKey, path, maxClusterKeyFile)
	}
	var f ClusterKeyFile
	if err := json.Unmarshal(b[:n], &f); err != nil {
		return nil, fmt.Errorf("%w: %s: not a cluster key file: %w", ErrClusterKey, path, err)
	}
	if f.Version != clusterKeyVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrClusterKey, path, f.Version, clusterKeyVersion)
	}
	var tried []string
	for _, h := range hsms {
		for _, s := range f.Sealings {
			if s.KeyID != h.W.KeyID() {
				continue
			}
			secret, err := h.W.Unwrap(ctx, s.Sealed, []byte(clusterKeyAAD))
			if err != nil {
				tried = append(tried, fmt.Sprintf("%q: %v", h.Name, err))
				continue
			}
			if len(secret) != ledger.ClusterSecretLen {
				return nil, fmt.Errorf("%w: %s: sealed secret of %d bytes", ErrClusterKey, path, len(secret))
			}
			return secret, nil
		}
	}
	var sealedUnder []string
	for _, s := range f.Sealings {
		sealedUnder = append(sealedUnder, fmt.Sprintf("%q (%s)", s.HSM, s.KeyID))
	}
	msg := fmt.Sprintf("%s is sealed under %s and no configured HSM opens it", path, strings.Join(sealedUnder, ", "))
	if len(tried) > 0 {
		msg += ": " + strings.Join(tried, "; ")
	}
	return nil, fmt.Errorf("%w: %s: this node's HSMs are not the cluster's; it does not join", ErrClusterKey, msg)
}
