package wire

import (
	"encoding/binary"
	"math"
)

// Frame layout of a kms API body, repeated back to back until the body ends:
//
//	+----------------+------------------+----------------------+
//	| command uint16 | length N uint32  | N bytes proto3 msg   |
//	| big endian     | big endian       |                      |
//	+----------------+------------------+----------------------+
//
// N may be 0 for a message whose fields all hold their default value.
const (
	// FrameHeaderSize is the size of a frame header in bytes.
	FrameHeaderSize = 6

	// MaxFrames is the largest number of frames DecodeFrames accepts in one body.
	MaxFrames = 1000
)

// Errors returned by DecodeFrames.
var (
	ErrNoFrames       = newClientError("body contains no frames")
	ErrTruncatedFrame = newClientError("truncated frame header")
	ErrFrameLength    = newClientError("frame length exceeds body")
	ErrTooManyFrames  = newClientError("too many frames")
)

// Frame is one command frame: a command code and the proto3 encoding of the
// command's request or response message.
type Frame struct {
	Cmd  Command
	Body []byte
}

// DecodeFrames splits body into its frames. The Body of each frame aliases
// body. It returns ErrNoFrames for an empty body, ErrTruncatedFrame when fewer
// than FrameHeaderSize bytes are left for a header, ErrFrameLength when a
// frame's length runs past the body, and ErrTooManyFrames when the body holds
// more than MaxFrames frames. Unknown command codes are not rejected here;
// use Command.Known.
func DecodeFrames(body []byte) ([]Frame, error) {
	if len(body) == 0 {
		return nil, ErrNoFrames
	}
	frames := make([]Frame, 0, countFrames(body))
	for off := 0; off < len(body); {
		if len(frames) == MaxFrames {
			return nil, refuse(ErrTooManyFrames, "more than %d", MaxFrames)
		}
		if len(body)-off < FrameHeaderSize {
			return nil, refuse(ErrTruncatedFrame, "frame %d at offset %d", len(frames), off)
		}
		cmd := Command(binary.BigEndian.Uint16(body[off:]))
		n := uint64(binary.BigEndian.Uint32(body[off+2:]))
		off += FrameHeaderSize
		if n > uint64(len(body)-off) {
			return nil, refuse(ErrFrameLength, "frame %d wants %d bytes, %d left", len(frames), n, len(body)-off)
		}
		end := off + int(n)
		frames = append(frames, Frame{Cmd: cmd, Body: body[off:end:end]})
		off = end
	}
	return frames, nil
}

// countFrames counts the frame headers of body (at most MaxFrames+1), so
// DecodeFrames allocates its slice once.
func countFrames(body []byte) int {
	n := 0
	for off := 0; len(body)-off >= FrameHeaderSize && n <= MaxFrames; n++ {
		off += FrameHeaderSize + int(binary.BigEndian.Uint32(body[off+2:]))
		if off < 0 { // overflow on 32-bit platforms
			break
		}
	}
	return n + 1
}

// AppendFrame appends one frame holding cmd and msg to dst and returns the
// extended slice. It panics if msg is longer than math.MaxUint32 bytes, which
// no caller can produce within the server's body limits.
func AppendFrame(dst []byte, cmd Command, msg []byte) []byte {
	if uint64(len(msg)) > math.MaxUint32 {
		panic("wire: frame message longer than 4 GiB")
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(cmd))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msg)))
	return append(dst, msg...)
}

// EncodeFrames returns the body made of frames in order.
func EncodeFrames(frames []Frame) []byte {
	size := 0
	for _, f := range frames {
		size += FrameHeaderSize + len(f.Body)
	}
	body := make([]byte, 0, size)
	for _, f := range frames {
		body = AppendFrame(body, f.Cmd, f.Body)
	}
	return body
}
