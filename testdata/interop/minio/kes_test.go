package minio

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/kms-go/kes"
)

// The KES-mode tests (issue 4) reuse the harness of the MinKMS test, with
// the same invariants (doc.go), and add these:
//   - kmsledger runs with --kes-enclave minio-kes; MinIO's KES identities
//     are Users of that enclave, in their h1: form, with a policy that
//     allows only what MinIO needs (and KEY:MAC, for the HMAC comparison).
//   - The real KES (KMSLEDGER_KES_BIN, pinned by .ci/minio-bins.sh) is only
//     run as a process. Its server certificate is the only CA its clients
//     trust; its config is an ordinary KES config with an ${ENV} variable,
//     and `kmsledger migrate` reads that same file unmodified.
//   - kes:v1 API keys and HMACs (MinIO can derive root credentials from
//     them) never reach a log.

// Names of the KES-mode scenarios.
const (
	kesEnclave    = "minio-kes" // --kes-enclave: KES callers act here
	kesPolicyName = "minio-kes-server"
	// MinIO's rights in KES mode; KEY:MAC lets the test compare HMACs.
	kesPolicyJSON = `{"allow":{"KEY:GENERATE":"*","KEY:DECRYPT":"*","KEY:CREATE":"*","KEY:LIST":"*","KEY:STATUS":"*","KEY:MAC":"*"}}`
)

// keyExistsText is how MinIO reports the KES error "key already exists"
// (400) to mc, spelling included: the same for a real KES and kmsledger.
const keyExistsText = "key with given key ID already exits"

// hmacMessages are the messages MinIO derives its root credentials from
// with the KES key (KES HMAC).
var hmacMessages = []string{"root access key", "root secret key"}

// kesFigures are the migration's numbers, reported at the end.
type kesFigures struct {
	keyFiles, found, imported int
	migrateTime               time.Duration
}

// TestMinIOKESEndToEnd runs an unmodified MinIO in KES mode
// (MINIO_KMS_KES_*) against kmsledger's KES API, once with a kes:v1 API key
// and once with a client certificate; then a MinIO that wrote objects
// through a real KES server with an fs key store is moved to kmsledger with
// `kmsledger migrate` and reads them all back.
func TestMinIOKESEndToEnd(t *testing.T) {
	start := time.Now()
	var mf kesFigures
	kesBin := requireBinary(t, "KMSLEDGER_KES_BIN")
	h := newE2E(t, func(f figures) string {
		return fmt.Sprintf("figures: %d objects written (%.1f MiB; sizes %s), %d objects read back byte-identical (%.1f MiB), KES store of %d keys migrated (found %d, imported %d) in %v, kmsledger started %d times, MinIO started %d times, wall time %v",
			f.written, mib(f.writtenBytes), sizeList(), f.read, mib(f.readBytes), mf.keyFiles, mf.found, mf.imported,
			mf.migrateTime.Round(time.Millisecond), f.kmsRestarts, f.minioStarts, time.Since(start).Round(time.Millisecond))
	})
	h.newLedger(t, kesEnclave)
	h.addEnclave(t, kesEnclave, kesPolicyName, kesPolicyJSON)
	ca := h.ledger.ca
	endpoint := "https://" + h.ledger.addr

	t.Run("api-key", func(t *testing.T) {
		k := h.newKESAPIKey(t)
		h.addKESIdentity(t, k.id)
		h.kesModeScenario(t, "kes-apikey", k.id, kesEnv(endpoint, ca, "kes-apikey-default", "MINIO_KMS_KES_API_KEY="+k.key.String()))
	})
	t.Run("client-certificate", func(t *testing.T) {
		cert, key := filepath.Join(h.dir, "minio-client.crt"), filepath.Join(h.dir, "minio-client.key")
		id := writeSelfSigned(t, cert, key, "minio-kes-client", x509.ExtKeyUsageClientAuth)
		h.addKESIdentity(t, id)
		h.kesModeScenario(t, "kes-cert", id, kesEnv(endpoint, ca, "kes-cert-default",
			"MINIO_KMS_KES_CERT_FILE="+cert, "MINIO_KMS_KES_KEY_FILE="+key))
	})
	t.Run("real-kes-migration", func(t *testing.T) { h.realKESMigration(t, kesBin, &mf) })
}

// addKESIdentity adds a KES identity, in its h1: form, to kesEnclave as a
// User with MinIO's policy.
func (h *e2e) addKESIdentity(t *testing.T, id kesIdentity) {
	t.Helper()
	h.kmsOK(t, "add-identity", "-e", kesEnclave, id.h1)
	h.kmsOK(t, "set-policy", "-e", kesEnclave, kesPolicyName, id.h1)
}

// kesModeScenario is the MinKMS scenario in reduced form for a MinIO in KES
// mode (env): default key created at start-up, `mc admin kms key create`,
// SSE-KMS and SSE-S3 buckets, single-part and multipart objects, key status,
// and a kmsledger restart. Key names start with prefix.
func (h *e2e) kesModeScenario(t *testing.T, prefix string, id kesIdentity, env []string) {
	defaultName, sseName := prefix+"-default", prefix+"-sse"
	kmsBucket, s3Bucket := prefix+"-kms-bucket", prefix+"-s3-bucket"
	m := h.newMinIO(t, prefix)
	var objs []*object

	runSteps(t, []step{
		{"minio starts and creates its default key", func(t *testing.T) {
			h.startMinIO(t, m, env)
			if ki := h.statKey(t, kesEnclave, defaultName); ki.CreatedBy != id.h1 {
				t.Fatalf("%s created by %q, want MinIO's KES identity %s", defaultName, ki.CreatedBy, id.h1)
			}
		}},
		{"mc admin kms key create", func(t *testing.T) {
			h.mcOK(t, "admin", "kms", "key", "create", m.alias, sseName)
			ki := h.statKey(t, kesEnclave, sseName)
			if ki.CreatedBy != id.h1 || len(ki.Versions) != 1 || ki.State != "enabled" {
				t.Fatalf("stat-key %s: created by %s, %d versions, %s; want MinIO's identity, 1 version, enabled", sseName, ki.CreatedBy, len(ki.Versions), ki.State)
			}
			_, err := h.mc(t, "admin", "kms", "key", "create", m.alias, sseName)
			wantErrText(t, "mc admin kms key create (existing key)", err, keyExistsText)
		}},
		{"sse-kms and sse-s3 buckets", func(t *testing.T) {
			h.makeBuckets(t, m, kmsBucket, sseName, s3Bucket)
		}},
		{"put single-part and multipart objects", func(t *testing.T) {
			objs = h.putBoth(t, m, kmsBucket, sseName, s3Bucket, "first")
			h.checkStat(t, objs...)
		}},
		{"get returns identical bytes", func(t *testing.T) { h.mustRead(t, objs...) }},
		{"mc admin kms key status and list", func(t *testing.T) {
			h.wantKeyStatus(t, m, sseName, defaultName)
			if keys := h.kmsKeys(t, m.alias); !slices.Contains(keys, sseName) || !slices.Contains(keys, defaultName) {
				t.Errorf("mc admin kms key list: %q, want %s and %s", keys, sseName, defaultName)
			}
		}},
		{"restart kmsledger: GET works", func(t *testing.T) {
			stopped := time.Now()
			h.ledger.p.Stop()
			t.Logf("kmsledger stopped in %v", time.Since(stopped).Round(time.Millisecond))
			h.startKMS(t)
			h.mustRead(t, objs...)
			o := &object{alias: m.alias, bucket: kmsBucket, name: "after-restart", size: 1 << 20, sseKMSKey: sseName}
			h.put(t, o)
			objs = append(objs, o)
			h.mustRead(t, o)
		}},
	})
	m.p.Stop()
}

// makeBuckets makes an SSE-KMS bucket (key sseName) and an SSE-S3 bucket.
func (h *e2e) makeBuckets(t *testing.T, m *minioServer, kmsBucket, sseName, s3Bucket string) {
	t.Helper()
	h.mcOK(t, "mb", m.alias+"/"+kmsBucket, m.alias+"/"+s3Bucket)
	h.mcOK(t, "encrypt", "set", "sse-kms", sseName, m.alias+"/"+kmsBucket)
	h.mcOK(t, "encrypt", "set", "sse-s3", m.alias+"/"+s3Bucket)
}

// wantKeyStatus fails unless `mc admin kms key status` succeeds for every
// key: MinIO generated a data key and decrypted it again.
func (h *e2e) wantKeyStatus(t *testing.T, m *minioServer, keys ...string) {
	t.Helper()
	for _, k := range keys {
		var st struct {
			KeyID  string `json:"keyId"`
			EncErr string `json:"encryptionError"`
			DecErr string `json:"decryptionError"`
			Result string `json:"status"`
		}
		h.mcJSON(t, &st, "admin", "kms", "key", "status", m.alias, k)
		if st.KeyID != k || st.EncErr != "" || st.DecErr != "" || st.Result != "success" {
			t.Errorf("mc admin kms key status %s: %+v, want success without errors", k, st)
		}
	}
}

// wantUser fails unless `mc admin user info` shows the user, enabled.
func (h *e2e) wantUser(t *testing.T, m *minioServer, user string) {
	t.Helper()
	var info struct {
		AccessKey  string `json:"accessKey"`
		UserStatus string `json:"userStatus"`
	}
	h.mcJSON(t, &info, "admin", "user", "info", m.alias, user)
	if info.AccessKey != user || info.UserStatus != "enabled" {
		t.Fatalf("mc admin user info %s: %+v, want the enabled user", user, info)
	}
}

// migrateSummary matches the summary line of `kmsledger migrate`.
var migrateSummary = regexp.MustCompile(`found (\d+), imported (\d+), unchanged (\d+), skipped (\d+), replaced (\d+), failed (\d+)`)

// migrateKES runs `kmsledger migrate --from <KES config> -e kesEnclave`
// (with the ${ENV} variables the config uses) and returns its counts
// found, imported, unchanged, skipped, replaced, failed.
func (h *e2e) migrateKES(t *testing.T, s *kesServer) [6]int {
	t.Helper()
	k := h.ledger
	env := append(baseEnv(), "MINIO_KMS_SERVER=https://"+k.addr, "MINIO_KMS_API_KEY="+k.rootKey, "KMSLEDGER_CA_FILE="+k.ca)
	env = append(env, s.env...)
	out, err := h.run(t, env, nil, k.bin, "migrate", "--from", s.config, "-e", kesEnclave)
	if err != nil {
		t.Fatalf("kmsledger migrate: %v", err)
	}
	t.Logf("kmsledger migrate: %s", h.red.Redact(strings.TrimSpace(out)))
	sm := migrateSummary.FindStringSubmatch(out)
	if sm == nil {
		t.Fatalf("kmsledger migrate printed no summary: %q", h.red.Redact(out))
	}
	var n [6]int
	for i := range n {
		n[i], _ = strconv.Atoi(sm[i+1])
	}
	return n
}

// kesKeyFacts is what a KES server says about a key: its description and
// the HMACs of hmacMessages (secrets: compared, never logged).
type kesKeyFacts struct {
	info  kes.KeyInfo
	hmacs [][]byte
}

// kesFacts asks the KES API at endpoint (trusting caFile), as caller, to
// describe every key and compute the HMACs of hmacMessages under it.
func (h *e2e) kesFacts(t *testing.T, caller *kesAPIKey, endpoint, caFile string, keys ...string) map[string]kesKeyFacts {
	t.Helper()
	c := caller.client(t, endpoint, caFile)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out := map[string]kesKeyFacts{}
	for _, k := range keys {
		info, err := c.DescribeKey(ctx, k)
		if err != nil {
			t.Fatalf("DescribeKey(%s) at %s: %v", k, endpoint, err)
		}
		f := kesKeyFacts{info: *info}
		for _, msg := range hmacMessages {
			sum, err := c.HMAC(ctx, k, []byte(msg))
			if err != nil {
				t.Fatalf("HMAC(%s, %q) at %s: %v", k, msg, endpoint, err)
			}
			f.hmacs = append(f.hmacs, sum)
		}
		out[k] = f
	}
	return out
}

// wantSameFacts fails unless kmsledger describes every key as the real KES
// did (name, algorithm, created at and by) and computes the same HMACs.
func wantSameFacts(t *testing.T, kesSaid, ledgerSays map[string]kesKeyFacts) {
	t.Helper()
	for k, want := range kesSaid {
		got := ledgerSays[k]
		if got.info.Name != want.info.Name || got.info.Algorithm != want.info.Algorithm ||
			!got.info.CreatedAt.Equal(want.info.CreatedAt) || got.info.CreatedBy != want.info.CreatedBy {
			t.Errorf("describe %s: kmsledger %+v, the real KES %+v", k, got.info, want.info)
		}
		for i, msg := range hmacMessages {
			if i >= len(got.hmacs) || !bytes.Equal(got.hmacs[i], want.hmacs[i]) {
				t.Errorf("HMAC(%s, %q) through kmsledger differs from the real KES's: the HMAC key was not migrated", k, msg)
			}
		}
		t.Logf("%s: kmsledger describes it as the real KES did (%s, created %s by %s) and computes the same HMACs",
			k, want.info.Algorithm, want.info.CreatedAt.Format(time.RFC3339Nano), want.info.CreatedBy)
	}
}

// realKESMigration: a MinIO writes objects and an IAM user through a real
// KES server with an fs key store; both stop; `kmsledger migrate` imports
// the key store; MinIO's KES identity is added to the enclave; MinIO,
// pointed at kmsledger, reads everything back.
func (h *e2e) realKESMigration(t *testing.T, kesBin string, mf *kesFigures) {
	const defaultName, sseName = "realkes-default", "realkes-sse"
	const kmsBucket, s3Bucket, user = "realkes-kms-bucket", "realkes-s3-bucket", "realkes-user"
	userSecret := "realkes-user-secret-of-the-test"
	h.red.Add(userSecret)
	minioKey := h.newKESAPIKey(t)
	auth := "MINIO_KMS_KES_API_KEY=" + minioKey.key.String()
	kesSrv := h.newKESServer(t, kesBin, minioKey.id)
	m := h.newMinIO(t, "realkes")
	var objs []*object
	var before map[string]kesKeyFacts

	runSteps(t, []step{
		{"minio on a real KES writes objects", func(t *testing.T) {
			h.startKES(t, kesSrv, minioKey)
			h.startMinIO(t, m, kesEnv(kesSrv.endpoint(), kesSrv.cert, defaultName, auth))
			h.mcOK(t, "admin", "kms", "key", "create", m.alias, sseName)
			_, err := h.mc(t, "admin", "kms", "key", "create", m.alias, sseName)
			wantErrText(t, "mc admin kms key create (existing key, real KES)", err, keyExistsText)
			h.makeBuckets(t, m, kmsBucket, sseName, s3Bucket)
			objs = h.putBoth(t, m, kmsBucket, sseName, s3Bucket, "kes")
			h.mcOK(t, "admin", "user", "add", m.alias, user, userSecret)
			h.checkStat(t, objs...)
			h.mustRead(t, objs...)
			h.wantKeyStatus(t, m, sseName, defaultName)
			before = h.kesFacts(t, minioKey, kesSrv.endpoint(), kesSrv.cert, defaultName, sseName)
		}},
		{"stop minio and kes; kmsledger migrate", func(t *testing.T) {
			m.p.Stop()
			kesSrv.p.Stop()
			files := kesSrv.keyFiles(t)
			slices.Sort(files)
			if want := []string{defaultName, sseName}; !slices.Equal(files, want) {
				t.Fatalf("KES fs key store holds %q, want %q", files, want)
			}
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(kesSrv.keys, f))
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("KES key file %s: %d bytes, %s", f, len(b), kesValueFormat(b))
			}
			mf.keyFiles = len(files)
			start := time.Now()
			n := h.migrateKES(t, kesSrv)
			mf.migrateTime = time.Since(start)
			mf.found, mf.imported = n[0], n[1]
			if want := [6]int{len(files), len(files), 0, 0, 0, 0}; n != want {
				t.Fatalf("kmsledger migrate: found/imported/unchanged/skipped/replaced/failed %v, want %v", n, want)
			}
			ls := strings.Fields(h.kmsOK(t, "ls-key", "-e", kesEnclave, "realkes-"))
			if !slices.Equal(ls, files) {
				t.Fatalf("kmsledger ls-key realkes-: %q, want the KES key store's %q", ls, files)
			}
			if n := h.migrateKES(t, kesSrv); n != [6]int{len(files), 0, len(files), 0, 0, 0} {
				t.Fatalf("second kmsledger migrate: found/imported/unchanged/skipped/replaced/failed %v, want all unchanged", n)
			}
		}},
		{"add minio's KES identity: same descriptions and HMACs", func(t *testing.T) {
			h.addKESIdentity(t, minioKey.id)
			wantSameFacts(t, before, h.kesFacts(t, minioKey, "https://"+h.ledger.addr, h.ledger.ca, defaultName, sseName))
		}},
		{"minio on kmsledger reads them all", func(t *testing.T) {
			h.startMinIO(t, m, kesEnv("https://"+h.ledger.addr, h.ledger.ca, defaultName, auth))
			h.checkStat(t, objs...)
			h.mustRead(t, objs...)
			h.wantUser(t, m, user)
			for _, k := range []string{defaultName, sseName} {
				if ki := h.statKey(t, kesEnclave, k); len(ki.Versions) != 1 || ki.Versions[0].LastUsed == nil {
					t.Fatalf("stat-key %s: %+v, want 1 version, used by MinIO", k, ki.Versions)
				}
			}
			h.wantKeyStatus(t, m, sseName, defaultName)
			more := h.putBoth(t, m, kmsBucket, sseName, s3Bucket, "after-migration")
			objs = append(objs, more...)
			h.mustRead(t, objs...)
		}},
	})
	m.p.Stop()
}

// kesValueFormat names the KES key-store value format of b (as migrate/value.go names them),
// without revealing the value.
func kesValueFormat(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("{")) && bytes.Contains(b, []byte(`"version"`)):
		return "JSON with version"
	case bytes.HasPrefix(b, []byte("{")):
		return "JSON"
	default:
		return "base64 protobuf KeyVersion"
	}
}
