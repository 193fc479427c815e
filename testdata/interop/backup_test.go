package interop

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/minio/kms-go/kms"
)

// TestBackupDB covers ReadDB and WriteDB (/v1/db): the snapshot is a
// kmsledger backup (gzip, format kmsledger-backup/v1) as the SDK hands it
// over; a running node verifies an upload and refuses to replace its
// state (409, saying how to restore offline); only root may do either.
func TestBackupDB(t *testing.T) {
	g := newGroup(t, "backup")
	var backup []byte
	g.run("ReadDB", func(t *testing.T) {
		resp, err := env.Root.ReadDB(ctx(t), &kms.ReadDBRequest{})
		noErr(t, "ReadDB", err)
		defer resp.Close()
		backup, err = io.ReadAll(resp.Body)
		noErr(t, "read body", err)
		z, err := gzip.NewReader(bytes.NewReader(backup))
		noErr(t, "gzip", err)
		first, err := bufio.NewReader(z).ReadString('\n')
		noErr(t, "first line", err)
		if !strings.Contains(first, `"format":"kmsledger-backup/v1"`) {
			t.Fatalf("first line %q, want a kmsledger-backup/v1 header", first)
		}
	})
	host := func(t *testing.T) string {
		u, err := url.Parse(env.Endpoint)
		noErr(t, "endpoint", err)
		return u.Host
	}
	g.run("WriteDB refused by a running node", func(t *testing.T) {
		err := env.Root.WriteDB(ctx(t), &kms.WriteDBRequest{Host: host(t), Body: bytes.NewReader(backup)})
		he := kms.AsHostError(err)
		if he == nil || !strings.Contains(err.Error(), "kmsledger restore") {
			t.Fatalf("WriteDB err = %v, want a host error saying how to restore offline", err)
		}
	})
	g.run("WriteDB of a changed byte", func(t *testing.T) {
		bad := bytes.Clone(backup)
		bad[len(bad)/2] ^= 1
		err := env.Root.WriteDB(ctx(t), &kms.WriteDBRequest{Host: host(t), Body: bytes.NewReader(bad)})
		if err == nil || strings.Contains(err.Error(), "backup verified") {
			t.Fatalf("WriteDB(changed byte) err = %v, want refused as not a backup", err)
		}
	})
	g.run("ReadDB and WriteDB as unknown identity", func(t *testing.T) {
		c := clientFor(t, newKey(t))
		if _, err := c.ReadDB(ctx(t), &kms.ReadDBRequest{}); err == nil {
			t.Fatal("ReadDB as unknown identity succeeded")
		}
		if err := c.WriteDB(ctx(t), &kms.WriteDBRequest{Host: host(t), Body: bytes.NewReader(backup)}); err == nil {
			t.Fatal("WriteDB as unknown identity succeeded")
		}
	})
}
