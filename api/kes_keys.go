package api

// Key endpoints of the KES API (README.md, "Migrating from KES, and the KES API").
// Byte fields are standard,
// padded base64 in JSON (Go []byte); an absent, null or empty "context" is
// empty associated data. Crypto goes through the same service as the kms
// API (projections/keys), so new ciphertexts are kmsledger's format and every format hsm can
// open (KES raw/msgpack/JSON, MinIO built-in KMS) decrypts.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
	"github.com/kmsledger/kmsledger/commands"
	"github.com/kmsledger/kmsledger/ledger"
	"github.com/kmsledger/kmsledger/migrate/kescompat"
	"github.com/kmsledger/kmsledger/projections"
)

// kesImportSource is the provenance recorded for keys imported through the
// KES API (the migration records kes-fs / kes-vault instead).
const kesImportSource = "kes-api"

func (k *kesAPI) createKey(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	cmd := commands.CreateKey{Enclave: k.enclave, Name: req.arg}
	_, err := k.s.h.Execute(req.ctx, req.identity, "", commands.Checked{Command: cmd, Check: commandCheck(req.identity, k.enclave, wire.CmdKeyCreate, req.arg)})
	k.done(w, r, err)
}

// importKey accepts the current body {"key","cipher"} and the bodies of
// KES ≤ v0.22: {"bytes"} and {"bytes","algorithm"}.
func (k *kesAPI) importKey(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var body struct {
		Key       []byte `json:"key"`
		Cipher    string `json:"cipher"`
		Bytes     []byte `json:"bytes"`
		Algorithm string `json:"algorithm"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		k.fail(w, r, errKESBody)
		return
	}
	defer clear(body.Key)
	defer clear(body.Bytes)
	material, cipher := body.Key, body.Cipher
	if material == nil {
		material, cipher = body.Bytes, body.Algorithm
	}
	typ, err := kesCipherType(cipher)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if len(material) != 32 {
		k.fail(w, r, &statusError{http.StatusNotAcceptable, "invalid key size for '" + cipher + "'"})
		return
	}
	cmd := commands.ImportKey{
		Enclave: k.enclave, Name: req.arg, Type: typ, Material: material,
		Source: &ledger.ImportSource{Kind: kesImportSource},
	}
	_, err = k.s.h.Execute(req.ctx, req.identity, "", commands.Checked{Command: cmd, Check: commandCheck(req.identity, k.enclave, wire.CmdKeyImport, req.arg)})
	k.done(w, r, err)
}

// kesKeyInfo is the body of /v1/key/describe.
type kesKeyInfo struct {
	Name      string    `json:"name"`
	Algorithm string    `json:"algorithm,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// describeKey reports the latest version's type. For a key migrated from
// KES, created_at and created_by are those KES recorded.
func (k *kesAPI) describeKey(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var info kesKeyInfo
	err := k.s.keys.ReadKey(req.ctx, k.enclave, req.arg, func(key *projections.Key) error {
		info = kesKeyInfo{Name: key.Name, CreatedAt: key.CreatedAt(), CreatedBy: kescompat.KESIdentity(key.CreatedBy)}
		vs := key.SortedVersions()
		if len(vs) == 0 {
			return nil
		}
		info.Algorithm = vs[len(vs)-1].Type
		// Migrated from KES (kes-fs, kes-vault, …): KES's own metadata.
		if src := vs[0].Source(); src != nil && strings.HasPrefix(src.Kind, "kes-") && src.Kind != kesImportSource {
			if t, err := time.Parse(time.RFC3339Nano, src.CreatedAt); err == nil {
				info.CreatedAt = t
			}
			if src.CreatedBy != "" {
				info.CreatedBy = src.CreatedBy
			}
		}
		return nil
	})
	k.reply(w, r, info, err)
}

// deleteKey destroys every version of the key.
func (k *kesAPI) deleteKey(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	cmd := commands.DeleteKey{Enclave: k.enclave, Name: req.arg, All: true}
	_, err := k.s.h.Execute(req.ctx, req.identity, "", commands.Checked{Command: cmd, Check: commandCheck(req.identity, k.enclave, wire.CmdKeyDelete, req.arg)})
	k.done(w, r, err)
}

// kesNameList is the body of the key and policy listings.
type kesNameList struct {
	Names      []string `json:"names"`
	ContinueAt string   `json:"continue_at"`
}

func (k *kesAPI) listKeys(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	names, err := k.s.keys.KeyNames(req.ctx, k.enclave, strings.TrimSuffix(req.arg, "*"))
	k.reply(w, r, kesNameList{Names: names}, err)
}

// matchPrefix returns the sorted names that start with pattern (without a
// final "*"); "" and "*" match everything. It never returns nil.
func matchPrefix(names []string, pattern string) []string {
	prefix := strings.TrimSuffix(pattern, "*")
	out := make([]string, 0, len(names))
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// kesCryptoRequest is the body of generate, encrypt, decrypt and hmac; each
// reads only its own fields. "version" (KES 2025) is accepted and ignored.
type kesCryptoRequest struct {
	Plaintext  []byte `json:"plaintext"`
	Ciphertext []byte `json:"ciphertext"`
	Context    []byte `json:"context"`
	Message    []byte `json:"message"`
	Version    string `json:"version"`
}

func (req *kesRequest) crypto(required bool) (*kesCryptoRequest, error) {
	var body kesCryptoRequest
	if len(req.body) == 0 && !required {
		return &body, nil
	}
	if err := json.Unmarshal(req.body, &body); err != nil {
		return nil, errKESBody
	}
	return &body, nil
}

// generate returns 32 random bytes and their ciphertext. The body is
// optional (KES parses it only when there is one).
func (k *kesAPI) generate(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	body, err := req.crypto(false)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	g, err := k.s.keys.GenerateDataKey(req.ctx, k.enclave, req.arg, 0, body.Context, 0)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	defer clear(g.Plaintext)
	k.reply(w, r, struct {
		Plaintext  []byte `json:"plaintext"`
		Ciphertext []byte `json:"ciphertext"`
	}{g.Plaintext, g.Ciphertext}, nil)
}

func (k *kesAPI) encrypt(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	body, err := req.crypto(true)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	defer clear(body.Plaintext)
	_, ct, err := k.s.keys.Encrypt(req.ctx, k.enclave, req.arg, 0, body.Plaintext, body.Context)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.reply(w, r, struct {
		Ciphertext []byte `json:"ciphertext"`
	}{ct}, nil)
}

func (k *kesAPI) decrypt(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	body, err := req.crypto(true)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	pt, err := k.open(req, body.Ciphertext, body.Context)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	defer clear(pt)
	k.reply(w, r, kesPlaintext{pt}, nil)
}

type kesPlaintext struct {
	Plaintext []byte `json:"plaintext"`
}

func (k *kesAPI) open(req *kesRequest, ciphertext, context []byte) ([]byte, error) {
	return k.s.keys.Decrypt(req.ctx, k.enclave, req.arg, 0, ciphertext, context)
}

// bulkDecrypt serves the KES ≤ v0.22 endpoint: a JSON array of
// {"ciphertext","context"} in, an array of {"plaintext"} out, all or
// nothing.
func (k *kesAPI) bulkDecrypt(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	var body []kesCryptoRequest
	if err := json.Unmarshal(req.body, &body); err != nil {
		k.fail(w, r, errKESBody)
		return
	}
	out := make([]kesPlaintext, 0, len(body))
	defer func() {
		for _, p := range out {
			clear(p.Plaintext)
		}
	}()
	for _, c := range body {
		pt, err := k.open(req, c.Ciphertext, c.Context)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		out = append(out, kesPlaintext{pt})
	}
	k.reply(w, r, out, nil)
}

// hmac returns HMAC-SHA256 of the message under the key's HMAC key (for
// keys migrated from KES, the HMAC key KES stored).
func (k *kesAPI) hmac(w http.ResponseWriter, r *http.Request, req *kesRequest) {
	body, err := req.crypto(true)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	_, mac, err := k.s.keys.MAC(req.ctx, k.enclave, req.arg, 0, body.Message)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.reply(w, r, struct {
		HMAC []byte `json:"hmac"`
	}{mac}, nil)
}
