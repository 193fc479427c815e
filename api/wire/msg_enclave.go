package wire

import "time"

// CreateEnclaveRequest is the message of ENCLAVE:CREATE.
type CreateEnclaveRequest struct {
	Name string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *CreateEnclaveRequest) MarshalProto() []byte { return appendString(nil, 1, m.Name) }

// UnmarshalProto resets m and decodes b into it.
func (m *CreateEnclaveRequest) UnmarshalProto(b []byte) error {
	*m = CreateEnclaveRequest{}
	return decodeName(b, &m.Name)
}

// DeleteEnclaveRequest is the message of ENCLAVE:DELETE.
type DeleteEnclaveRequest struct {
	Name string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *DeleteEnclaveRequest) MarshalProto() []byte { return appendString(nil, 1, m.Name) }

// UnmarshalProto resets m and decodes b into it.
func (m *DeleteEnclaveRequest) UnmarshalProto(b []byte) error {
	*m = DeleteEnclaveRequest{}
	return decodeName(b, &m.Name)
}

// EnclaveStatusRequest is the message of ENCLAVE:STATUS.
type EnclaveStatusRequest struct {
	Name string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *EnclaveStatusRequest) MarshalProto() []byte { return appendString(nil, 1, m.Name) }

// UnmarshalProto resets m and decodes b into it.
func (m *EnclaveStatusRequest) UnmarshalProto(b []byte) error {
	*m = EnclaveStatusRequest{}
	return decodeName(b, &m.Name)
}

// EnclaveStatusResponse answers ENCLAVE:STATUS and is the element of
// ListEnclavesResponse.
type EnclaveStatusResponse struct {
	Name      string    // 1
	CreatedAt time.Time // 2
	CreatedBy string    // 3, an identity
}

// MarshalProto returns the proto3 encoding of m.
func (m *EnclaveStatusResponse) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendTime(b, 2, m.CreatedAt)
	return appendString(b, 3, m.CreatedBy)
}

// UnmarshalProto resets m and decodes b into it.
func (m *EnclaveStatusResponse) UnmarshalProto(b []byte) error {
	*m = EnclaveStatusResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.CreatedAt, err = f.time(m.CreatedAt)
		case 3:
			m.CreatedBy, err = f.string(m.CreatedBy)
		}
		return err
	})
}

// decodeName decodes a message whose only field is the string field 1.
func decodeName(b []byte, name *string) error {
	return decode(b, func(f field) (err error) {
		if f.num == 1 {
			*name, err = f.string(*name)
		}
		return err
	})
}
