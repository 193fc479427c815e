package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodeFramesGolden(t *testing.T) {
	t.Parallel()
	// MinIO's startup KEY:GENERATE: command 207, a 14-byte
	// GenerateKeyRequest{Name: "my-key", AssociatedData: "{}", Length: 32}.
	golden := []byte{0x00, 0xcf, 0x00, 0x00, 0x00, 0x0e, 0x0a, 0x06, 'm', 'y', '-', 'k', 'e', 'y', 0x1a, 0x02, '{', '}', 0x20, 0x20}
	frames, err := DecodeFrames(golden)
	if err != nil {
		t.Fatalf("DecodeFrames(golden) err = %v, want nil", err)
	}
	if len(frames) != 1 || frames[0].Cmd != CmdKeyGenerate {
		t.Fatalf("DecodeFrames(golden) = %+v, want one KEY:GENERATE frame", frames)
	}
	var req GenerateKeyRequest
	if err := req.UnmarshalProto(frames[0].Body); err != nil {
		t.Fatalf("UnmarshalProto err = %v, want nil", err)
	}
	want := GenerateKeyRequest{Name: "my-key", AssociatedData: []byte("{}"), Length: 32}
	if req.Name != want.Name || !bytes.Equal(req.AssociatedData, want.AssociatedData) || req.Length != 32 || req.Version != 0 {
		t.Fatalf("decoded %+v, want %+v", req, want)
	}
	if got := AppendFrame(nil, CmdKeyGenerate, want.MarshalProto()); !bytes.Equal(got, golden) {
		t.Fatalf("encode = % x, want % x", got, golden)
	}
}

func TestClusterStatusFrame(t *testing.T) {
	t.Parallel()
	golden := []byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00}
	if got := AppendFrame(nil, CmdClusterStatus, nil); !bytes.Equal(got, golden) {
		t.Fatalf("AppendFrame(CLUSTER:STATUS) = % x, want % x", got, golden)
	}
	frames, err := DecodeFrames(golden)
	if err != nil || len(frames) != 1 || frames[0].Cmd != CmdClusterStatus || len(frames[0].Body) != 0 {
		t.Fatalf("DecodeFrames = %+v, %v; want one empty CLUSTER:STATUS frame", frames, err)
	}
}

func TestDecodeFramesErrors(t *testing.T) {
	t.Parallel()
	tooMany := bytes.Repeat([]byte{0x00, 0x03, 0, 0, 0, 0}, MaxFrames+1)
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"Empty", nil, ErrNoFrames},
		{"ShortHeader", []byte{0x00, 0xcf, 0x00}, ErrTruncatedFrame},
		{"ShortSecondHeader", []byte{0x00, 0x03, 0, 0, 0, 0, 0x00}, ErrTruncatedFrame},
		{"LengthPastBody", []byte{0x00, 0xcf, 0, 0, 0, 3, 1, 2}, ErrFrameLength},
		{"HugeLength", []byte{0x00, 0xcf, 0xff, 0xff, 0xff, 0xff}, ErrFrameLength},
		{"TooMany", tooMany, ErrTooManyFrames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := DecodeFrames(tt.body); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeFrames err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeFramesMax(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte{0x00, 0x03, 0, 0, 0, 0}, MaxFrames)
	frames, err := DecodeFrames(body)
	if err != nil || len(frames) != MaxFrames {
		t.Fatalf("DecodeFrames(%d frames) = %d, %v; want %d, nil", MaxFrames, len(frames), err, MaxFrames)
	}
}

func TestEncodeFramesRoundTrip(t *testing.T) {
	t.Parallel()
	in := []Frame{
		{Cmd: CmdKeyDecrypt, Body: (&DecryptRequest{Name: "a", Ciphertext: []byte{1, 2, 3}}).MarshalProto()},
		{Cmd: CmdClusterStatus, Body: nil},
		{Cmd: Command(9999), Body: []byte("x")},
	}
	out, err := DecodeFrames(EncodeFrames(in))
	if err != nil {
		t.Fatalf("DecodeFrames(EncodeFrames) err = %v", err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d frames, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Cmd != in[i].Cmd || !bytes.Equal(out[i].Body, in[i].Body) {
			t.Errorf("frame %d = %+v, want %+v", i, out[i], in[i])
		}
	}
	// Appending to a decoded body must not overwrite the next frame.
	_ = append(out[0].Body, 0xff)
	if out[1].Cmd != CmdClusterStatus || !bytes.Equal(out[2].Body, []byte("x")) {
		t.Fatal("appending to a frame body clobbered the next frame")
	}
}

func FuzzDecodeFrames(f *testing.F) {
	f.Add([]byte{0x00, 0xcf, 0x00, 0x00, 0x00, 0x0e, 0x0a, 0x06, 'm', 'y', '-', 'k', 'e', 'y', 0x1a, 0x02, '{', '}', 0x20, 0x20})
	f.Add([]byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x00, 0x03, 0x00, 0x00, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		frames, err := DecodeFrames(body)
		if err != nil {
			return
		}
		if len(frames) == 0 || len(frames) > MaxFrames {
			t.Fatalf("DecodeFrames returned %d frames without error", len(frames))
		}
		if re := EncodeFrames(frames); !bytes.Equal(re, body) {
			t.Fatalf("EncodeFrames(DecodeFrames(b)) = % x, want % x", re, body)
		}
	})
}
