package wire

import (
	"reflect"
	"testing"
)

// FuzzUnmarshalProto feeds arbitrary bytes to the decoder of every message.
// Decoding must never panic, and a message that decodes must survive
// MarshalProto/UnmarshalProto unchanged.
func FuzzUnmarshalProto(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(m.MarshalProto())
	}
	f.Add([]byte{0x0a, 0x06, 'm', 'y', '-', 'k', 'e', 'y', 0x1a, 0x02, '{', '}', 0x20, 0x20})
	types := make([]reflect.Type, 0, len(sampleMessages()))
	for _, m := range sampleMessages()[:len(sampleMessages())/2] {
		types = append(types, reflect.TypeOf(m).Elem())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range types {
			m := reflect.New(typ).Interface().(Message)
			if err := m.UnmarshalProto(b); err != nil {
				continue
			}
			again := reflect.New(typ).Interface().(Message)
			if err := again.UnmarshalProto(m.MarshalProto()); err != nil {
				t.Fatalf("%s: re-decode err = %v", typ.Name(), err)
			}
			if !reflect.DeepEqual(again, m) {
				t.Fatalf("%s: re-decode = %+v, want %+v", typ.Name(), again, m)
			}
		}
	})
}
