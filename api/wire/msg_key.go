package wire

import "time"

// Key types accepted by KEY:CREATE and KEY:IMPORT and reported by KEY:STATUS.
const (
	KeyTypeAES256   = "AES256"
	KeyTypeChaCha20 = "ChaCha20"
)

// CreateKeyRequest is the message of KEY:CREATE. An empty Type lets the
// server choose; AddVersion adds a version to an existing key (rotation).
type CreateKeyRequest struct {
	Name       string // 1
	Type       string // 2
	AddVersion bool   // 3
}

// MarshalProto returns the proto3 encoding of m.
func (m *CreateKeyRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendString(b, 2, m.Type)
	return appendBool(b, 3, m.AddVersion)
}

// UnmarshalProto resets m and decodes b into it.
func (m *CreateKeyRequest) UnmarshalProto(b []byte) error {
	*m = CreateKeyRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Type, err = f.string(m.Type)
		case 3:
			m.AddVersion = f.bool(m.AddVersion)
		}
		return err
	})
}

// ImportKeyRequest is the message of KEY:IMPORT (code 203). Key is secret key
// material.
type ImportKeyRequest struct {
	Name string // 1
	Type string // 2
	Key  []byte // 3
}

// MarshalProto returns the proto3 encoding of m.
func (m *ImportKeyRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendString(b, 2, m.Type)
	return appendBytes(b, 3, m.Key)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ImportKeyRequest) UnmarshalProto(b []byte) error {
	*m = ImportKeyRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Type, err = f.string(m.Type)
		case 3:
			m.Key = f.bytes(m.Key)
		}
		return err
	})
}

// DeleteKeyRequest is the message of KEY:DELETE. Version 0 means the latest
// version; AllVersions deletes the whole key and is invalid with Version > 0.
type DeleteKeyRequest struct {
	Name        string // 1
	Version     uint32 // 2
	AllVersions bool   // 3
}

// MarshalProto returns the proto3 encoding of m.
func (m *DeleteKeyRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendUint32(b, 2, m.Version)
	return appendBool(b, 3, m.AllVersions)
}

// UnmarshalProto resets m and decodes b into it.
func (m *DeleteKeyRequest) UnmarshalProto(b []byte) error {
	*m = DeleteKeyRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Version = f.uint32(m.Version)
		case 3:
			m.AllVersions = f.bool(m.AllVersions)
		}
		return err
	})
}

// KeyStatusRequest is the message of KEY:STATUS. Version 0 means the latest.
type KeyStatusRequest struct {
	Name    string // 1
	Version uint32 // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *KeyStatusRequest) MarshalProto() []byte {
	return appendUint32(appendString(nil, 1, m.Name), 2, m.Version)
}

// UnmarshalProto resets m and decodes b into it.
func (m *KeyStatusRequest) UnmarshalProto(b []byte) error {
	*m = KeyStatusRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Version = f.uint32(m.Version)
		}
		return err
	})
}

// KeyStatusResponse answers KEY:STATUS and is the element of
// ListKeysResponse. Type must be KeyTypeAES256 or KeyTypeChaCha20 for SDK
// clients to accept it.
type KeyStatusResponse struct {
	Name      string    // 1
	Version   uint32    // 2
	Type      string    // 3
	CreatedAt time.Time // 4
	CreatedBy string    // 5
}

// MarshalProto returns the proto3 encoding of m.
func (m *KeyStatusResponse) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendUint32(b, 2, m.Version)
	b = appendString(b, 3, m.Type)
	b = appendTime(b, 4, m.CreatedAt)
	return appendString(b, 5, m.CreatedBy)
}

// UnmarshalProto resets m and decodes b into it.
func (m *KeyStatusResponse) UnmarshalProto(b []byte) error {
	*m = KeyStatusResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Version = f.uint32(m.Version)
		case 3:
			m.Type, err = f.string(m.Type)
		case 4:
			m.CreatedAt, err = f.time(m.CreatedAt)
		case 5:
			m.CreatedBy, err = f.string(m.CreatedBy)
		}
		return err
	})
}

// EncryptRequest is the message of KEY:ENCRYPT.
type EncryptRequest struct {
	Name           string // 1
	Version        uint32 // 2
	Plaintext      []byte // 3
	AssociatedData []byte // 4
}

// MarshalProto returns the proto3 encoding of m.
func (m *EncryptRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendUint32(b, 2, m.Version)
	b = appendBytes(b, 3, m.Plaintext)
	return appendBytes(b, 4, m.AssociatedData)
}

// UnmarshalProto resets m and decodes b into it.
func (m *EncryptRequest) UnmarshalProto(b []byte) error {
	*m = EncryptRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Version = f.uint32(m.Version)
		case 3:
			m.Plaintext = f.bytes(m.Plaintext)
		case 4:
			m.AssociatedData = f.bytes(m.AssociatedData)
		}
		return err
	})
}

// EncryptResponse answers KEY:ENCRYPT.
type EncryptResponse struct {
	Version    uint32 // 1
	Ciphertext []byte // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *EncryptResponse) MarshalProto() []byte {
	return appendBytes(appendUint32(nil, 1, m.Version), 2, m.Ciphertext)
}

// UnmarshalProto resets m and decodes b into it.
func (m *EncryptResponse) UnmarshalProto(b []byte) error {
	*m = EncryptResponse{}
	return decode(b, func(f field) error {
		switch f.num {
		case 1:
			m.Version = f.uint32(m.Version)
		case 2:
			m.Ciphertext = f.bytes(m.Ciphertext)
		}
		return nil
	})
}

// DecryptRequest is the message of KEY:DECRYPT. MinIO always sends Version
// 0; the server then takes the version from the ciphertext.
type DecryptRequest struct {
	Name           string // 1
	Version        uint32 // 2
	Ciphertext     []byte // 3
	AssociatedData []byte // 4
}

// MarshalProto returns the proto3 encoding of m.
func (m *DecryptRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendUint32(b, 2, m.Version)
	b = appendBytes(b, 3, m.Ciphertext)
	return appendBytes(b, 4, m.AssociatedData)
}

// UnmarshalProto resets m and decodes b into it.
func (m *DecryptRequest) UnmarshalProto(b []byte) error {
	*m = DecryptRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Version = f.uint32(m.Version)
		case 3:
			m.Ciphertext = f.bytes(m.Ciphertext)
		case 4:
			m.AssociatedData = f.bytes(m.AssociatedData)
		}
		return err
	})
}

// DecryptResponse answers KEY:DECRYPT. Plaintext is secret.
type DecryptResponse struct {
	Plaintext []byte // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *DecryptResponse) MarshalProto() []byte { return appendBytes(nil, 1, m.Plaintext) }

// UnmarshalProto resets m and decodes b into it.
func (m *DecryptResponse) UnmarshalProto(b []byte) error {
	*m = DecryptResponse{}
	return decode(b, func(f field) error {
		if f.num == 1 {
			m.Plaintext = f.bytes(m.Plaintext)
		}
		return nil
	})
}

// GenerateKeyRequest is the message of KEY:GENERATE. Version 0 means the
// latest; Length 0 means 32 bytes (maximum 1024).
type GenerateKeyRequest struct {
	Name           string // 1
	Version        uint32 // 2
	AssociatedData []byte // 3
	Length         uint32 // 4
}

// MarshalProto returns the proto3 encoding of m.
func (m *GenerateKeyRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendUint32(b, 2, m.Version)
	b = appendBytes(b, 3, m.AssociatedData)
	return appendUint32(b, 4, m.Length)
}

// UnmarshalProto resets m and decodes b into it.
func (m *GenerateKeyRequest) UnmarshalProto(b []byte) error {
	*m = GenerateKeyRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Version = f.uint32(m.Version)
		case 3:
			m.AssociatedData = f.bytes(m.AssociatedData)
		case 4:
			m.Length = f.uint32(m.Length)
		}
		return err
	})
}

// GenerateKeyResponse answers KEY:GENERATE. Plaintext is secret.
type GenerateKeyResponse struct {
	Version    uint32 // 1
	Plaintext  []byte // 2
	Ciphertext []byte // 3
}

// MarshalProto returns the proto3 encoding of m.
func (m *GenerateKeyResponse) MarshalProto() []byte {
	var b []byte
	b = appendUint32(b, 1, m.Version)
	b = appendBytes(b, 2, m.Plaintext)
	return appendBytes(b, 3, m.Ciphertext)
}

// UnmarshalProto resets m and decodes b into it.
func (m *GenerateKeyResponse) UnmarshalProto(b []byte) error {
	*m = GenerateKeyResponse{}
	return decode(b, func(f field) error {
		switch f.num {
		case 1:
			m.Version = f.uint32(m.Version)
		case 2:
			m.Plaintext = f.bytes(m.Plaintext)
		case 3:
			m.Ciphertext = f.bytes(m.Ciphertext)
		}
		return nil
	})
}

// MACRequest is the message of KEY:MAC. Version 0 means the latest.
type MACRequest struct {
	Name    string // 1
	Version uint32 // 2
	Message []byte // 3
}

// MarshalProto returns the proto3 encoding of m.
func (m *MACRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendUint32(b, 2, m.Version)
	return appendBytes(b, 3, m.Message)
}

// UnmarshalProto resets m and decodes b into it.
func (m *MACRequest) UnmarshalProto(b []byte) error {
	*m = MACRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			m.Version = f.uint32(m.Version)
		case 3:
			m.Message = f.bytes(m.Message)
		}
		return err
	})
}

// MACResponse answers KEY:MAC.
type MACResponse struct {
	Version uint32 // 1
	MAC     []byte // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *MACResponse) MarshalProto() []byte {
	return appendBytes(appendUint32(nil, 1, m.Version), 2, m.MAC)
}

// UnmarshalProto resets m and decodes b into it.
func (m *MACResponse) UnmarshalProto(b []byte) error {
	*m = MACResponse{}
	return decode(b, func(f field) error {
		switch f.num {
		case 1:
			m.Version = f.uint32(m.Version)
		case 2:
			m.MAC = f.bytes(m.MAC)
		}
		return nil
	})
}
