package minio

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmsledger/kmsledger/testdata/interop/internal/harness"
)

// Names used by the scenario.
const (
	enclave    = "minio-e2e"
	defaultKey = "minio-default-key" // MINIO_KMS_SSE_KEY, created by MinIO at startup
	sseKey     = "minio-e2e-key"     // created with `mc admin kms key create`
	staticKey  = "minio-static-key"  // MINIO_KMS_SECRET_KEY name, later imported
	policyName = "minio-server"
	policyJSON = `{"allow":{"KEY:GENERATE":"*","KEY:DECRYPT":"*","KEY:CREATE":"*","KEY:LIST":"*","KEY:STATUS":"*"}}`
)

// Object sizes: single-part small and 1 MiB, and 20 MiB, which mc uploads
// as a multipart upload of two parts.
var sizes = []struct {
	name      string
	size      int64
	multipart bool
}{
	{"small", 1000, false},
	{"one-mib", 1 << 20, false},
	{"multipart-20mib", 20 << 20, true},
}

// step is one stage of a scenario; later stages build on earlier ones.
type step struct {
	name string
	run  func(t *testing.T)
}

// runSteps runs the steps as subtests in order and stops at the first
// failure, logging the wall time of each.
func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, s.run)
		t.Logf("step %-45q %-4s %v", s.name, map[bool]string{true: "ok", false: "FAIL"}[ok], time.Since(start).Round(time.Millisecond))
		if !ok {
			t.Fatalf("step %q failed; the later steps depend on it", s.name)
		}
	}
}

// TestMinIOEndToEnd runs an unmodified MinIO server and mc against kmsledger: the
// SSE-KMS/SSE-S3 key lifecycle, then the migration of a MinIO that used a
// static key.
func TestMinIOEndToEnd(t *testing.T) {
	start := time.Now()
	h := newE2E(t, func(f figures) string {
		return fmt.Sprintf("figures: %d objects written (%.1f MiB; sizes %s), %d objects read back byte-identical (%.1f MiB), %d GETs refused as expected, kmsledger started %d times, MinIO started %d times, wall time %v",
			f.written, mib(f.writtenBytes), sizeList(), f.read, mib(f.readBytes), f.refused, f.kmsRestarts, f.minioStarts, time.Since(start).Round(time.Millisecond))
	})
	minioKey, minioID := h.setUpKMS(t)
	t.Run("sse", func(t *testing.T) { h.sseScenario(t, minioKey, minioID) })
	t.Run("migration", func(t *testing.T) { h.migrationScenario(t, minioKey) })
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// sizeList describes the object sizes.
func sizeList() string {
	var kinds []string
	for _, s := range sizes {
		kinds = append(kinds, fmt.Sprintf("%s %d B", s.name, s.size))
	}
	return strings.Join(kinds, ", ")
}

// setUpKMS builds and starts kmsledger, creates the enclave and MinIO's
// User identity with its policy, and returns that identity's API key and id.
func (h *e2e) setUpKMS(t *testing.T) (apiKey, identity string) {
	t.Helper()
	h.newLedger(t, "")
	idOut, err := h.run(t, baseEnv(), nil, h.ledger.bin, "identity")
	if err != nil {
		t.Fatalf("kmsledger identity: %v", err)
	}
	apiKey, identity = field(idOut, "API key:"), field(idOut, "Identity:")
	if !strings.HasPrefix(apiKey, "k1:") || !strings.HasPrefix(identity, "h1:") {
		t.Fatalf("kmsledger identity printed no key pair: %q", h.red.Redact(idOut))
	}
	h.red.Add(apiKey)
	h.addEnclave(t, enclave, policyName, policyJSON)
	h.kmsOK(t, "add-identity", "-e", enclave, identity)
	h.kmsOK(t, "set-policy", "-e", enclave, policyName, identity)
	return apiKey, identity
}

// field returns the value after prefix on the first line that starts with it.
func field(out, prefix string) string {
	for line := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// newObjects returns the objects of every size in a bucket, named prefix-size.
func newObjects(alias, bucket, prefix, kmsKey string) []*object {
	var objs []*object
	for _, s := range sizes {
		objs = append(objs, &object{alias: alias, bucket: bucket, name: prefix + "-" + s.name, size: s.size, sseKMSKey: kmsKey, multipart: s.multipart})
	}
	return objs
}

// putBoth uploads objects of every size, named prefix-size, to the SSE-KMS
// bucket kmsBucket (key kmsKey) and then to the SSE-S3 bucket s3Bucket, and
// returns them in that order.
func (h *e2e) putBoth(t *testing.T, m *minioServer, kmsBucket, kmsKey, s3Bucket, prefix string) []*object {
	t.Helper()
	objs := append(newObjects(m.alias, kmsBucket, prefix, kmsKey), newObjects(m.alias, s3Bucket, prefix, "")...)
	for _, o := range objs {
		h.put(t, o)
	}
	return objs
}

// statResult is the part of `mc --json stat` the test reads.
type statResult struct {
	Size     int64             `json:"size"`
	ETag     string            `json:"etag"`
	Metadata map[string]string `json:"metadata"`
}

// checkStat fails unless `mc stat` shows the object's size, encryption and,
// through the ETag's part count, whether it was a multipart upload.
func (h *e2e) checkStat(t *testing.T, objs ...*object) {
	t.Helper()
	for _, o := range objs {
		var st statResult
		h.mcJSON(t, &st, "stat", o.path())
		alg, keyID := st.Metadata["X-Amz-Server-Side-Encryption"], st.Metadata["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"]
		wantAlg, wantKeyID := "AES256", ""
		if o.sseKMSKey != "" {
			wantAlg, wantKeyID = "aws:kms", "arn:aws:kms:"+o.sseKMSKey
		}
		if alg != wantAlg || keyID != wantKeyID {
			t.Errorf("mc stat %s: encryption %q key id %q, want %q key id %q", o.path(), alg, keyID, wantAlg, wantKeyID)
		}
		if st.Size != o.size {
			t.Errorf("mc stat %s: size %d, want %d", o.path(), st.Size, o.size)
		}
		if multipart := strings.Contains(st.ETag, "-"); multipart != o.multipart {
			t.Errorf("mc stat %s: ETag %q, want multipart=%v", o.path(), st.ETag, o.multipart)
		}
	}
}

// kmsKeys returns the names `mc admin kms key list` shows.
func (h *e2e) kmsKeys(t *testing.T, alias string) []string {
	t.Helper()
	var list struct {
		Keys []string `json:"keys"`
	}
	h.mcJSON(t, &list, "admin", "kms", "key", "list", alias)
	return list.Keys
}

// wantErrText fails unless err is not nil and contains every text.
func wantErrText(t *testing.T, what string, err error, texts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want an error with %q", what, texts)
	}
	for _, s := range texts {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("%s: %v, want an error with %q", what, err, s)
		}
	}
	t.Logf("%s refused as expected: %v", what, err)
}

// sseScenario: key creation through mc, SSE-KMS and SSE-S3 objects, rotation,
// disable/enable, restarts of both servers, and destruction of the key.
func (h *e2e) sseScenario(t *testing.T, apiKey, identity string) {
	const kmsBucket, s3Bucket = "sse-kms-bucket", "sse-s3-bucket"
	m := h.newMinIO(t, "e2e")
	env := h.kmsEnv(enclave, apiKey, defaultKey)
	var kmsObjs, s3Objs []*object
	all := func() []*object { return slices.Concat(kmsObjs, s3Objs) }

	runSteps(t, []step{
		{"minio starts and creates its default key", func(t *testing.T) {
			h.startMinIO(t, m, env)
			if ki := h.statKey(t, enclave, defaultKey); ki.CreatedBy != identity {
				t.Fatalf("%s created by %s, want MinIO's identity %s", defaultKey, ki.CreatedBy, identity)
			}
		}},
		{"mc admin kms key create", func(t *testing.T) {
			h.mcOK(t, "admin", "kms", "key", "create", m.alias, sseKey)
			ki := h.statKey(t, enclave, sseKey)
			if ki.CreatedBy != identity || len(ki.Versions) != 1 || ki.State != "enabled" {
				t.Fatalf("stat-key %s: created by %s, %d versions, %s; want MinIO's identity, 1 version, enabled", sseKey, ki.CreatedBy, len(ki.Versions), ki.State)
			}
			_, err := h.mc(t, "admin", "kms", "key", "create", m.alias, sseKey)
			wantErrText(t, "mc admin kms key create (existing key)", err, "already")
		}},
		{"mc mb and mc encrypt set", func(t *testing.T) {
			h.makeBuckets(t, m, kmsBucket, sseKey, s3Bucket)
			for _, c := range []struct{ bucket, alg, keyID string }{{kmsBucket, "aws:kms", sseKey}, {s3Bucket, "AES256", ""}} {
				var info struct {
					Encryption struct {
						Algorithm string `json:"algorithm"`
						KeyID     string `json:"keyId"`
					} `json:"encryption"`
				}
				h.mcJSON(t, &info, "encrypt", "info", m.alias+"/"+c.bucket)
				if info.Encryption.Algorithm != c.alg || info.Encryption.KeyID != c.keyID {
					t.Errorf("mc encrypt info %s: %+v, want %s %q", c.bucket, info.Encryption, c.alg, c.keyID)
				}
			}
		}},
		{"put single-part and multipart objects", func(t *testing.T) {
			first := h.putBoth(t, m, kmsBucket, sseKey, s3Bucket, "first")
			// Clipped: appending to kmsObjs must not overwrite s3Objs.
			kmsObjs, s3Objs = slices.Clip(first[:len(sizes)]), first[len(sizes):]
		}},
		{"mc stat shows the encryption", func(t *testing.T) { h.checkStat(t, all()...) }},
		{"get returns identical bytes", func(t *testing.T) { h.mustRead(t, all()...) }},
		{"mc admin kms key status and list", func(t *testing.T) {
			h.wantKeyStatus(t, m, sseKey, defaultKey)
			if keys := h.kmsKeys(t, m.alias); !slices.Contains(keys, sseKey) || !slices.Contains(keys, defaultKey) {
				t.Errorf("mc admin kms key list: %q, want %s and %s", keys, sseKey, defaultKey)
			}
		}},
		{"rotation keeps old objects and uses the new version", func(t *testing.T) {
			h.kmsOK(t, "add-key", "-e", enclave, "--version", sseKey)
			ki := h.statKey(t, enclave, sseKey)
			if len(ki.Versions) != 2 {
				t.Fatalf("after add-key --version: %d versions, want 2", len(ki.Versions))
			}
			if ki.Versions[1].LastUsed != nil {
				t.Fatalf("version 2 used at %v before any PUT after the rotation", ki.Versions[1].LastUsed)
			}
			h.mustRead(t, all()...)
			rotated := h.putBoth(t, m, kmsBucket, sseKey, s3Bucket, "rotated")
			if ki := h.statKey(t, enclave, sseKey); ki.Versions[1].LastUsed == nil {
				t.Fatalf("version 2 of %s was not used by the PUTs after the rotation", sseKey)
			}
			kmsObjs = append(kmsObjs, rotated[:len(sizes)]...)
			s3Objs = append(s3Objs, rotated[len(sizes):]...)
			h.checkStat(t, rotated...)
			h.mustRead(t, all()...)
		}},
		{"disabled key: GET fails", func(t *testing.T) {
			h.kmsOK(t, "disable-key", "-e", enclave, sseKey)
			if ki := h.statKey(t, enclave, sseKey); ki.State != "disabled" {
				t.Fatalf("stat-key after disable-key: %s, want disabled", ki.State)
			}
			// MinIO answers 500 here and mc retries 500s with a backoff,
			// so probe one object per version and upload kind.
			h.mustRefuse(t, "kms:DecryptionFailed", pick(t, kmsObjs, "first-small", "first-multipart-20mib", "rotated-small")...)
			_, err := h.kms(t, "keygen", "-e", enclave, sseKey)
			wantErrText(t, "kmsledger keygen (disabled key)", err, "key is disabled", "409")
			err = h.upload(t, &object{alias: m.alias, bucket: kmsBucket, name: "while-disabled", size: 1000, sseKMSKey: sseKey})
			wantErrText(t, "PUT while the key is disabled", err, "kms:KeyGenerationFailed")
			h.mustRead(t, s3Objs...)
		}},
		{"enabled key: GET works", func(t *testing.T) {
			h.kmsOK(t, "enable-key", "-e", enclave, sseKey)
			if ki := h.statKey(t, enclave, sseKey); ki.State != "enabled" {
				t.Fatalf("stat-key after enable-key: %s, want enabled", ki.State)
			}
			h.mustRead(t, all()...)
		}},
		{"restart kmsledger: GET works", func(t *testing.T) {
			h.restartKMS(t)
			if ki := h.statKey(t, enclave, sseKey); ki.State != "enabled" || len(ki.Versions) != 2 {
				t.Fatalf("stat-key after restart: %s with %d versions, want enabled with 2", ki.State, len(ki.Versions))
			}
			h.mustRead(t, all()...)
		}},
		{"restart minio: GET works", func(t *testing.T) {
			m.p.Stop()
			h.startMinIO(t, m, env)
			h.mustRead(t, all()...)
			o := &object{alias: m.alias, bucket: kmsBucket, name: "after-restart", size: 1 << 20, sseKMSKey: sseKey}
			h.put(t, o)
			kmsObjs = append(kmsObjs, o)
			h.mustRead(t, o)
		}},
		{"deleted key: GET fails for good", func(t *testing.T) {
			h.kmsOK(t, "rm-key", "-e", enclave, "--all", sseKey)
			h.mustRefuse(t, "kms:KeyNotFound", kmsObjs...)
			h.mustRead(t, s3Objs...)
			_, err := h.kms(t, "add-key", "-e", enclave, sseKey)
			wantErrText(t, "kmsledger add-key (destroyed name)", err, "key was destroyed", "409")
			_, err = h.mc(t, "admin", "kms", "key", "create", m.alias, sseKey)
			wantErrText(t, "mc admin kms key create (destroyed name)", err, "key was destroyed")
			h.wantNoKey(t, m, sseKey)
		}},
		{"deleted key stays deleted after restarts", func(t *testing.T) {
			h.restartKMS(t)
			h.wantNoKey(t, m, sseKey)
			// A MinIO whose default key is the destroyed name tries
			// GenerateKey, then CreateKey at its startup.
			m.p.Stop()
			p := h.launchMinIO(t, m, h.kmsEnv(enclave, apiKey, sseKey))
			switch err := m.waitMinIO(p); {
			case errors.Is(err, harness.ErrExited):
				t.Logf("MinIO with the destroyed key as its default key refused to start: %s", lastLine(m.log, "FATAL"))
			case err != nil:
				t.Fatal(err)
			default:
				t.Logf("MinIO with the destroyed key as its default key started")
				p.Stop()
			}
			h.wantNoKey(t, m, sseKey)
			h.startMinIO(t, m, env)
			h.mustRefuse(t, "kms:KeyNotFound", kmsObjs...)
			h.mustRead(t, s3Objs...)
			_, err := h.mc(t, "admin", "kms", "key", "create", m.alias, sseKey)
			wantErrText(t, "mc admin kms key create (destroyed name, after restarts)", err, "key was destroyed")
			h.wantNoKey(t, m, sseKey)
		}},
	})
}

// pick returns the objects with the given names, in that order.
func pick(t *testing.T, objs []*object, names ...string) []*object {
	t.Helper()
	var out []*object
	for _, name := range names {
		i := slices.IndexFunc(objs, func(o *object) bool { return o.name == name })
		if i < 0 {
			t.Fatalf("no object %s", name)
		}
		out = append(out, objs[i])
	}
	return out
}

// wantNoKey fails unless neither kmsledger nor MinIO lists the key.
func (h *e2e) wantNoKey(t *testing.T, m *minioServer, name string) {
	t.Helper()
	_, err := h.kms(t, "stat-key", "-e", enclave, name)
	wantErrText(t, "kmsledger stat-key (destroyed key)", err, "key does not exist", "404")
	ls := strings.Fields(h.kmsOK(t, "ls-key", "-e", enclave))
	if slices.Contains(ls, name) {
		t.Fatalf("kmsledger ls-key lists the destroyed key %s: %q", name, ls)
	}
	if !m.p.Exited() {
		if keys := h.kmsKeys(t, m.alias); slices.Contains(keys, name) {
			t.Fatalf("mc admin kms key list lists the destroyed key %s: %q", name, keys)
		}
	}
}

// lastLine returns the last line of a log file that contains s.
func lastLine(path, s string) string {
	b, _ := os.ReadFile(path)
	var last string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, s) {
			last = strings.TrimSpace(line)
		}
	}
	return last
}

// migrationScenario: a MinIO on a static key (MINIO_KMS_SECRET_KEY) writes
// objects and IAM data; the key is imported into kmsledger; the same MinIO
// restarted on kmsledger reads everything.
func (h *e2e) migrationScenario(t *testing.T, apiKey string) {
	const kmsBucket, s3Bucket = "static-kms-bucket", "static-s3-bucket"
	const user = "e2e-user"
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	material := base64.StdEncoding.EncodeToString(raw[:])
	userSecret := fmt.Sprintf("secret-%x", raw[:4]) + "-of-the-user"
	h.red.Add(material, userSecret)
	m := h.newMinIO(t, "static")
	var objs []*object

	runSteps(t, []step{
		{"minio on a static key writes objects", func(t *testing.T) {
			h.startMinIO(t, m, []string{"MINIO_KMS_SECRET_KEY=" + staticKey + ":" + material})
			h.makeBuckets(t, m, kmsBucket, staticKey, s3Bucket)
			objs = h.putBoth(t, m, kmsBucket, staticKey, s3Bucket, "static")
			h.mcOK(t, "admin", "user", "add", m.alias, user, userSecret)
			h.checkStat(t, objs...)
			h.mustRead(t, objs...)
		}},
		{"import the static key into kmsledger", func(t *testing.T) {
			m.p.Stop()
			h.kmsOK(t, "add-key", "-e", enclave, "--import", material, "--type", "AES256", staticKey)
			if ki := h.statKey(t, enclave, staticKey); len(ki.Versions) != 1 || ki.Versions[0].LastUsed != nil {
				t.Fatalf("imported key: %+v, want 1 version, never used", ki.Versions)
			}
		}},
		{"minio on kmsledger reads them all", func(t *testing.T) {
			h.startMinIO(t, m, h.kmsEnv(enclave, apiKey, staticKey))
			h.checkStat(t, objs...)
			h.mustRead(t, objs...)
			if ki := h.statKey(t, enclave, staticKey); ki.Versions[0].LastUsed == nil {
				t.Fatalf("kmsledger never used the imported key: MinIO did not ask it to decrypt")
			}
			h.wantUser(t, m, user)
			more := h.putBoth(t, m, kmsBucket, staticKey, s3Bucket, "after-migration")
			objs = append(objs, more...)
			h.mustRead(t, objs...)
		}},
	})
}
