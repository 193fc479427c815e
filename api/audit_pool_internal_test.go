package api

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// TestAuditWriterReleaseClears: the answer a reused auditWriter held (a
// data key, say) is sent whole and then wiped from its buffer, and the
// next request starts from an empty writer.
func TestAuditWriterReleaseClears(t *testing.T) {
	secret := []byte("data key 0123456789abcdef0123456789")
	rec := httptest.NewRecorder()
	aw := &auditWriter{w: rec}
	aw.Write(secret)
	aw.info.enclave = "e"
	held := aw.buf[:cap(aw.buf)]
	aw.finish()
	if !bytes.Equal(rec.Body.Bytes(), secret) || rec.Code != 200 {
		t.Fatalf("sent %d %q, want 200 %q", rec.Code, rec.Body.Bytes(), secret)
	}
	aw.release()
	if !bytes.Equal(held, make([]byte, len(held))) {
		t.Fatalf("buffer after release = %q, want zeros", held)
	}
	if aw.w != nil || aw.status != 0 || len(aw.buf) != 0 || aw.info.enclave != "" || aw.streaming {
		t.Fatalf("released writer not reset: %+v", aw)
	}
}
