package bench

// The bare server: the floor of a benchmark. A Go HTTPS server with the
// TLS settings of kmsledger's API (TLS 1.2+, client certificates
// requested, HTTP/1.1 only) that reads a request and answers canned
// bytes: for the kms API one canned frame per request frame, by command
// code, with an exact Content-Length; for the KES API the canned body of
// the route. It does no authentication, no lookup and no crypto.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

// BareConfig configures ServeBare.
type BareConfig struct {
	API    string            // "kms" or "kes"
	Canned map[string][]byte // kms: command code -> encoded answer frame(s); kes: operation -> body
}

// ParseCanned reads NAME=HEX arguments into a map.
func ParseCanned(args []string) (map[string][]byte, error) {
	m := map[string][]byte{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bench: canned answer %q: want NAME=HEX", a)
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("bench: canned answer %q: %w", k, err)
		}
		m[k] = b
	}
	return m, nil
}

// cannedArgs is the inverse of ParseCanned.
func cannedArgs(m map[string][]byte) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+hex.EncodeToString(v))
	}
	return out
}

// BareHandler answers requests with cfg's canned bytes.
func BareHandler(cfg BareConfig) http.Handler {
	answer := func(w http.ResponseWriter, b []byte) {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	}
	if cfg.API == "kes" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			for _, op := range []string{OpGenerate, OpDecrypt, OpCreate} {
				if b, ok := cfg.Canned[op]; ok && strings.HasPrefix(r.URL.Path, "/v1/key/"+op+"/") {
					w.Header().Set("Content-Type", "application/json")
					answer(w, b)
					return
				}
			}
			http.Error(w, "not canned", http.StatusNotImplemented)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		frames, ferr := wire.DecodeFrames(body)
		if err != nil || ferr != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var out []byte
		for _, f := range frames {
			b, ok := cfg.Canned[strconv.Itoa(int(f.Cmd))]
			if !ok {
				http.Error(w, "not canned", http.StatusNotImplemented)
				return
			}
			out = append(out, b...)
		}
		answer(w, out)
	})
}

// ServeBare serves the bare server on ln with a fresh self-signed
// certificate until the listener fails.
func ServeBare(ln net.Listener, cfg BareConfig) error {
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		NextProtos:   []string{"http/1.1"},
	}
	srv := &http.Server{
		Handler:           BareHandler(cfg),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	return srv.Serve(tls.NewListener(ln, tlsConf))
}

// selfSigned makes a P-256 certificate for 127.0.0.1, valid for a day.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kmsledger bench bare server"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
