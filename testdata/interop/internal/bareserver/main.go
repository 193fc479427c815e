// Command bareserver is the floor of the data-plane benchmark: a Go HTTPS
// server with kmsledger's TLS settings (TLS 1.2+, client certificates
// requested, HTTP/1.1 only) that reads a kms request body and answers, for
// the command code of its first frame, one canned frame with an exact
// Content-Length. It does no authentication, no lookup and no crypto.
//
//	bareserver -addr 127.0.0.1:0 -cert cert.pem -key key.pem -canned 207=HEX -canned 206=HEX
//
// It prints "listening on ADDR" once it accepts connections.
package main

import (
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

type cannedFlag map[uint16][]byte

func (c cannedFlag) String() string { return "" }

// Set parses CODE=HEX, HEX being a protobuf message body.
func (c cannedFlag) Set(v string) error {
	code, body, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want CODE=HEX, got %q", v)
	}
	n, err := strconv.ParseUint(code, 10, 16)
	if err != nil {
		return err
	}
	msg, err := hex.DecodeString(body)
	if err != nil {
		return err
	}
	frame := binary.BigEndian.AppendUint16(nil, uint16(n))
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(msg)))
	c[uint16(n)] = append(frame, msg...)
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	certFile := flag.String("cert", "", "server certificate (PEM)")
	keyFile := flag.String("key", "", "server private key (PEM)")
	canned := cannedFlag{}
	flag.Var(canned, "canned", "CODE=HEX: answer requests whose first frame has command CODE with this message (repeatable)")
	flag.Parse()

	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		NextProtos:   []string{"http/1.1"},
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil || len(body) < 6 {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			resp, ok := canned[binary.BigEndian.Uint16(body)]
			if !ok {
				http.Error(w, "not canned", http.StatusNotImplemented)
				return
			}
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", strconv.Itoa(len(resp)))
			w.WriteHeader(http.StatusOK)
			w.Write(resp)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())
	log.Fatal(srv.Serve(tls.NewListener(ln, tlsConf)))
}
