package wire

import "google.golang.org/protobuf/encoding/protowire"

// ListRequest is the message of the four list commands (ENCLAVE:LIST,
// KEY:LIST, POLICY:LIST, IDENTITY:LIST). ContinueAt is inclusive; Limit 0 lets
// the server choose.
type ListRequest struct {
	Prefix     string // 1
	ContinueAt string // 2
	Limit      uint32 // 3
}

// MarshalProto returns the proto3 encoding of m.
func (m *ListRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Prefix)
	b = appendString(b, 2, m.ContinueAt)
	return appendUint32(b, 3, m.Limit)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ListRequest) UnmarshalProto(b []byte) error {
	*m = ListRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Prefix, err = f.string(m.Prefix)
		case 2:
			m.ContinueAt, err = f.string(m.ContinueAt)
		case 3:
			m.Limit = f.uint32(m.Limit)
		}
		return err
	})
}

// ListEnclavesResponse answers ENCLAVE:LIST. ContinueAt is the first name of
// the next page, or "" at the end.
type ListEnclavesResponse struct {
	Enclaves   []EnclaveStatusResponse // 1
	ContinueAt string                  // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *ListEnclavesResponse) MarshalProto() []byte {
	return marshalList(m.Enclaves, m.ContinueAt)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ListEnclavesResponse) UnmarshalProto(b []byte) (err error) {
	*m = ListEnclavesResponse{}
	m.Enclaves, m.ContinueAt, err = unmarshalList[EnclaveStatusResponse](b)
	return err
}

// ListKeysResponse answers KEY:LIST.
type ListKeysResponse struct {
	Keys       []KeyStatusResponse // 1
	ContinueAt string              // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *ListKeysResponse) MarshalProto() []byte {
	return marshalList(m.Keys, m.ContinueAt)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ListKeysResponse) UnmarshalProto(b []byte) (err error) {
	*m = ListKeysResponse{}
	m.Keys, m.ContinueAt, err = unmarshalList[KeyStatusResponse](b)
	return err
}

// ListPoliciesResponse answers POLICY:LIST.
type ListPoliciesResponse struct {
	Policies   []PolicyStatusResponse // 1
	ContinueAt string                 // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *ListPoliciesResponse) MarshalProto() []byte {
	return marshalList(m.Policies, m.ContinueAt)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ListPoliciesResponse) UnmarshalProto(b []byte) (err error) {
	*m = ListPoliciesResponse{}
	m.Policies, m.ContinueAt, err = unmarshalList[PolicyStatusResponse](b)
	return err
}

// ListIdentitiesResponse answers IDENTITY:LIST.
type ListIdentitiesResponse struct {
	Identities []IdentityResponse // 1
	ContinueAt string             // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *ListIdentitiesResponse) MarshalProto() []byte {
	return marshalList(m.Identities, m.ContinueAt)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ListIdentitiesResponse) UnmarshalProto(b []byte) (err error) {
	*m = ListIdentitiesResponse{}
	m.Identities, m.ContinueAt, err = unmarshalList[IdentityResponse](b)
	return err
}

// messagePtr is a pointer to a message value type T.
type messagePtr[T any] interface {
	*T
	Message
}

// marshalList encodes a list response: field 1 repeated items, field 2
// ContinueAt.
func marshalList[T any, P messagePtr[T]](items []T, continueAt string) []byte {
	var b []byte
	for i := range items {
		b = appendMessage(b, 1, P(&items[i]).MarshalProto())
	}
	return appendString(b, 2, continueAt)
}

// unmarshalList decodes a list response.
func unmarshalList[T any, P messagePtr[T]](b []byte) (items []T, continueAt string, err error) {
	err = decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			if f.typ != protowire.BytesType {
				return nil
			}
			var item T
			if err := P(&item).UnmarshalProto(f.b); err != nil {
				return err
			}
			items = append(items, item)
		case 2:
			continueAt, err = f.string(continueAt)
		}
		return err
	})
	return items, continueAt, err
}
