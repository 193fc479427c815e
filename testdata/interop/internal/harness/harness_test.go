package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseExport(t *testing.T) {
	tests := []struct {
		line, name, value string
		ok                bool
	}{
		{"export MINIO_KMS_SERVER=https://127.0.0.1:7373", "MINIO_KMS_SERVER", "https://127.0.0.1:7373", true},
		{"  export A='quoted value'  ", "A", "quoted value", true},
		{`export B="x=y"`, "B", "x=y", true},
		{`export C="unbalanced'`, "C", `"unbalanced'`, true},
		{"export D=", "D", "", true},
		{"export NOVALUE", "", "", false},
		{"MINIO_KMS_SERVER=https://x", "", "", false},
		{"# export E=1", "", "", false},
	}
	for _, tt := range tests {
		name, value, ok := parseExport(tt.line)
		if name != tt.name || value != tt.value || ok != tt.ok {
			t.Errorf("parseExport(%q) = %q, %q, %v; want %q, %q, %v", tt.line, name, value, ok, tt.name, tt.value, tt.ok)
		}
	}
}

func TestExportCollectorSendsOnceWhenComplete(t *testing.T) {
	c := &exportCollector{want: []string{"A", "B"}, vars: map[string]string{}, out: make(chan map[string]string, 1)}
	c.line("export A=1")
	c.line("noise")
	select {
	case v := <-c.out:
		t.Fatalf("sent %v before B was seen", v)
	default:
	}
	c.line("export B='2'")
	c.line("export A=3") // after sending: must not block or send again
	v := <-c.out
	if v["B"] != "2" {
		t.Errorf("B = %q, want 2", v["B"])
	}
	select {
	case v := <-c.out:
		t.Fatalf("sent a second time: %v", v)
	default:
	}
}

func TestGoModPath(t *testing.T) {
	tests := []struct{ gomod, want string }{
		{"module github.com/kmsledger/kmsledger\n\ngo 1.26\n", MainModule},
		{"// comment\nmodule \"example.com/q\"\n", "example.com/q"},
		{"  module   example.com/x  \r\n", "example.com/x"},
		{"go 1.26\n", ""},
	}
	for _, tt := range tests {
		if got := goModPath([]byte(tt.gomod)); got != tt.want {
			t.Errorf("goModPath(%q) = %q, want %q", tt.gomod, got, tt.want)
		}
	}
}

func TestRepoRootDeclaresMainModule(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if got := goModPath(b); got != MainModule {
		t.Fatalf("%s/go.mod declares %q, want %q", root, got, MainModule)
	}
}

func TestRedactor(t *testing.T) {
	var r Redactor
	r.Add("", "hunter2-password")
	tests := []struct{ in, want string }{
		{"export MINIO_KMS_API_KEY=k1:AbC_d-9", "export MINIO_KMS_API_KEY=<redacted>"},
		{"key k2:a+b/c== end", "key <redacted> end"},
		{"MINIO_KMS_KES_API_KEY=kes:v1:ACQpoG/7+Z2c=", "MINIO_KMS_KES_API_KEY=<redacted>"},
		{"KMSLEDGER_HSM_KEY=hsm:aes256:QmFzZTY0-_=", "KMSLEDGER_HSM_KEY=<redacted>"},
		{"password hunter2-password!", "password <redacted>!"},
		{"Root identity: h1:Zm9vYmFy", "Root identity: h1:Zm9vYmFy"},
		{"xk1:notakey", "xk1:notakey"},
	}
	for _, tt := range tests {
		if got := r.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("first line\nsecond\nthird\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n    int
		want string
	}{
		{100, "first line\nsecond\nthird\n"},
		{10, "third\n"},         // "ond\nthird\n" starts mid-line
		{14, "second\nthird\n"}, // "\nsecond\n..." starts after a line end
	}
	for _, tt := range tests {
		if got := TailFile(path, tt.n); got != tt.want {
			t.Errorf("TailFile(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := TailFile(filepath.Join(t.TempDir(), "missing"), 10); !strings.HasPrefix(got, "(") {
		t.Errorf("TailFile(missing) = %q, want the error in parentheses", got)
	}
}

func TestProcReadyRedactsAndStops(t *testing.T) {
	dir := t.TempDir()
	var raw []string
	p, err := Start(ProcConfig{
		Name:   "sh",
		Bin:    "/bin/sh",
		Args:   []string{"-c", "echo 'export K=k1:SeCrEt'; echo server ready; exec sleep 60"},
		Log:    filepath.Join(dir, "sh.log"),
		Marker: "ready",
		OnLine: func(line string) { raw = append(raw, line) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := p.WaitReady(nil); err != nil {
		t.Fatal(err)
	}
	if p.Exited() {
		t.Fatal("exited before Stop")
	}
	p.Stop()
	p.Stop() // idempotent
	if !p.Exited() || p.Err() == nil {
		t.Fatalf("after Stop: exited %v, status %v; want exited by a signal", p.Exited(), p.Err())
	}
	if len(raw) != 2 || raw[0] != "export K=k1:SeCrEt" {
		t.Errorf("OnLine saw %q, want both lines unredacted", raw)
	}
	log := TailFile(p.Log(), 1<<20)
	if strings.Contains(log, "SeCrEt") || !strings.Contains(log, "export K=<redacted>") || !strings.Contains(log, "sh exited") {
		t.Errorf("log is not the redacted output with start and exit lines:\n%s", log)
	}
}

func TestProcWaitReadyExited(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		marker string
		check  func() error
	}{
		{"marker", "never printed", nil},
		{"check", "", func() error { return errors.New("not yet") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(ProcConfig{
				Name: "false", Bin: "/bin/sh", Args: []string{"-c", "exit 3"},
				Log: filepath.Join(dir, tt.name+".log"), Marker: tt.marker,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Stop)
			if err := p.WaitReady(tt.check); !errors.Is(err, ErrExited) {
				t.Fatalf("WaitReady = %v, want ErrExited", err)
			}
		})
	}
}

func TestStartMissingBinary(t *testing.T) {
	_, err := Start(ProcConfig{Name: "missing", Bin: filepath.Join(t.TempDir(), "nope"), Log: filepath.Join(t.TempDir(), "log")})
	if err == nil {
		t.Fatal("Start of a missing binary succeeded")
	}
}
