package wire

// AddHSMRequest is the message of CLUSTER:ADDHSM (code 5): seal the root
// encryption key under the HSM Name of the receiving node's configuration.
// Overwrite accepts an HSM that already holds a sealing.
type AddHSMRequest struct {
	Name      string // 1, JSON "name"
	Overwrite bool   // 2, JSON "overwrite"
}

// MarshalProto returns the proto3 encoding of m.
func (m *AddHSMRequest) MarshalProto() []byte {
	return appendBool(appendString(nil, 1, m.Name), 2, m.Overwrite)
}

// UnmarshalProto resets m and decodes b into it.
func (m *AddHSMRequest) UnmarshalProto(b []byte) error {
	*m = AddHSMRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Overwrite = f.bool(m.Overwrite)
		}
		return err
	})
}

// RemoveHSMRequest is the message of CLUSTER:REMOVEHSM (code 6): remove
// the sealing of the root encryption key under the HSM Name (not the
// HSM's configuration).
type RemoveHSMRequest struct {
	Name string // 1, JSON "name"
}

// MarshalProto returns the proto3 encoding of m.
func (m *RemoveHSMRequest) MarshalProto() []byte { return appendString(nil, 1, m.Name) }

// UnmarshalProto resets m and decodes b into it.
func (m *RemoveHSMRequest) UnmarshalProto(b []byte) error {
	*m = RemoveHSMRequest{}
	return decodeName(b, &m.Name)
}
