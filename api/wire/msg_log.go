package wire

import (
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// LogRequest is the unframed body of POST /v1/debug/log.
type LogRequest struct {
	Level      int32     // 1, sint32
	Message    string    // 2
	Since      time.Time // 3
	Method     string    // 4
	Path       string    // 5
	Identity   string    // 6
	IP         string    // 7
	TraceLevel int32     // 8, sint32
}

// MarshalProto returns the proto3 encoding of m.
func (m *LogRequest) MarshalProto() []byte {
	var b []byte
	b = appendSint64(b, 1, int64(m.Level))
	b = appendString(b, 2, m.Message)
	b = appendTime(b, 3, m.Since)
	b = appendString(b, 4, m.Method)
	b = appendString(b, 5, m.Path)
	b = appendString(b, 6, m.Identity)
	b = appendString(b, 7, m.IP)
	return appendSint64(b, 8, int64(m.TraceLevel))
}

// UnmarshalProto resets m and decodes b into it.
func (m *LogRequest) UnmarshalProto(b []byte) error {
	*m = LogRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Level = f.sint32(m.Level)
		case 2:
			m.Message, err = f.string(m.Message)
		case 3:
			m.Since, err = f.time(m.Since)
		case 4:
			m.Method, err = f.string(m.Method)
		case 5:
			m.Path, err = f.string(m.Path)
		case 6:
			m.Identity, err = f.string(m.Identity)
		case 7:
			m.IP, err = f.string(m.IP)
		case 8:
			m.TraceLevel = f.sint32(m.TraceLevel)
		}
		return err
	})
}

// LogStackFrame is one element of LogRecord.Trace.
type LogStackFrame struct {
	Function string // 1
	File     string // 2
	Line     uint32 // 3
}

// LogRequestInfo is LogRecord.Req: the request a log record belongs to.
type LogRequestInfo struct {
	Method   string // 1
	Path     string // 2
	Identity string // 3
	IP       string // 4
}

// LogRecord is one record of the POST /v1/debug/log stream. SDK clients
// dereference Req without a nil check and parse Req.IP, so servers must always
// set Req with a valid IP.
type LogRecord struct {
	Level   int32           // 1, sint32
	Time    time.Time       // 2
	Message string          // 3
	Trace   []LogStackFrame // 4
	Req     *LogRequestInfo // 5
}

// MarshalProto returns the proto3 encoding of m.
func (m *LogRecord) MarshalProto() []byte {
	var b []byte
	b = appendSint64(b, 1, int64(m.Level))
	b = appendTime(b, 2, m.Time)
	b = appendString(b, 3, m.Message)
	for _, t := range m.Trace {
		var e []byte
		e = appendString(e, 1, t.Function)
		e = appendString(e, 2, t.File)
		e = appendUint32(e, 3, t.Line)
		b = appendMessage(b, 4, e)
	}
	if r := m.Req; r != nil {
		var e []byte
		e = appendString(e, 1, r.Method)
		e = appendString(e, 2, r.Path)
		e = appendString(e, 3, r.Identity)
		e = appendString(e, 4, r.IP)
		b = appendMessage(b, 5, e)
	}
	return b
}

// UnmarshalProto resets m and decodes b into it.
func (m *LogRecord) UnmarshalProto(b []byte) error {
	*m = LogRecord{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Level = f.sint32(m.Level)
		case 2:
			m.Time, err = f.time(m.Time)
		case 3:
			m.Message, err = f.string(m.Message)
		case 4:
			if f.typ != protowire.BytesType {
				return nil
			}
			var t LogStackFrame
			err = decode(f.b, func(f field) (err error) {
				switch f.num {
				case 1:
					t.Function, err = f.string(t.Function)
				case 2:
					t.File, err = f.string(t.File)
				case 3:
					t.Line = f.uint32(t.Line)
				}
				return err
			})
			if err == nil {
				m.Trace = append(m.Trace, t)
			}
		case 5:
			if f.typ != protowire.BytesType {
				return nil
			}
			if m.Req == nil {
				m.Req = new(LogRequestInfo)
			}
			r := m.Req
			err = decode(f.b, func(f field) (err error) {
				switch f.num {
				case 1:
					r.Method, err = f.string(r.Method)
				case 2:
					r.Path, err = f.string(r.Path)
				case 3:
					r.Identity, err = f.string(r.Identity)
				case 4:
					r.IP, err = f.string(r.IP)
				}
				return err
			})
		}
		return err
	})
}
