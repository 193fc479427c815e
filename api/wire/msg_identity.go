package wire

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnknownPrivilege is returned by ParsePrivilege.
var ErrUnknownPrivilege = errors.New("wire: unknown privilege")

// Privilege codes of IdentityResponse.Privilege.
const (
	PrivilegeSysAdmin uint32 = 1
	PrivilegeAdmin    uint32 = 2
	PrivilegeUser     uint32 = 3
)

// PrivilegeName returns the text form of a privilege code ("SysAdmin",
// "Admin", "User"), as CreateIdentityRequest.Privilege carries it, or "" for
// an unknown code.
func PrivilegeName(p uint32) string {
	switch p {
	case PrivilegeSysAdmin:
		return "SysAdmin"
	case PrivilegeAdmin:
		return "Admin"
	case PrivilegeUser:
		return "User"
	}
	return ""
}

// ParsePrivilege returns the privilege code named by s, ignoring case. The
// empty string means PrivilegeUser.
func ParsePrivilege(s string) (uint32, error) {
	if s == "" {
		return PrivilegeUser, nil
	}
	for _, p := range []uint32{PrivilegeSysAdmin, PrivilegeAdmin, PrivilegeUser} {
		if strings.EqualFold(s, PrivilegeName(p)) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownPrivilege, s)
}

// CreateIdentityRequest is the message of IDENTITY:CREATE, which creates or
// overwrites an identity. Privilege is "SysAdmin", "Admin", "User" or ""
// (User).
type CreateIdentityRequest struct {
	Identity         string            // 1
	Privilege        string            // 2
	IsServiceAccount bool              // 3
	Tags             map[string]string // 4
}

// MarshalProto returns the proto3 encoding of m.
func (m *CreateIdentityRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Identity)
	b = appendString(b, 2, m.Privilege)
	b = appendBool(b, 3, m.IsServiceAccount)
	return appendStringMap(b, 4, m.Tags)
}

// UnmarshalProto resets m and decodes b into it.
func (m *CreateIdentityRequest) UnmarshalProto(b []byte) error {
	*m = CreateIdentityRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Identity, err = f.string(m.Identity)
		case 2:
			m.Privilege, err = f.string(m.Privilege)
		case 3:
			m.IsServiceAccount = f.bool(m.IsServiceAccount)
		case 4:
			err = f.stringMapEntry(&m.Tags)
		}
		return err
	})
}

// DeleteIdentityRequest is the message of IDENTITY:DELETE.
type DeleteIdentityRequest struct {
	Identity string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *DeleteIdentityRequest) MarshalProto() []byte { return appendString(nil, 1, m.Identity) }

// UnmarshalProto resets m and decodes b into it.
func (m *DeleteIdentityRequest) UnmarshalProto(b []byte) error {
	*m = DeleteIdentityRequest{}
	return decodeName(b, &m.Identity)
}

// IdentityRequest is the message of IDENTITY:STATUS.
type IdentityRequest struct {
	Identity string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *IdentityRequest) MarshalProto() []byte { return appendString(nil, 1, m.Identity) }

// UnmarshalProto resets m and decodes b into it.
func (m *IdentityRequest) UnmarshalProto(b []byte) error {
	*m = IdentityRequest{}
	return decodeName(b, &m.Identity)
}

// IdentityResponse answers IDENTITY:STATUS and is the element of
// ListIdentitiesResponse. Privilege is one of the Privilege* codes.
type IdentityResponse struct {
	Identity         string            // 1
	Privilege        uint32            // 2
	Policy           string            // 3
	CreatedAt        time.Time         // 4
	CreatedBy        string            // 5
	IsServiceAccount bool              // 6
	ServiceAccounts  []string          // 7
	Tags             map[string]string // 8
}

// MarshalProto returns the proto3 encoding of m.
func (m *IdentityResponse) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Identity)
	b = appendUint32(b, 2, m.Privilege)
	b = appendString(b, 3, m.Policy)
	b = appendTime(b, 4, m.CreatedAt)
	b = appendString(b, 5, m.CreatedBy)
	b = appendBool(b, 6, m.IsServiceAccount)
	for _, s := range m.ServiceAccounts {
		b = appendMessage(b, 7, []byte(s))
	}
	return appendStringMap(b, 8, m.Tags)
}

// UnmarshalProto resets m and decodes b into it.
func (m *IdentityResponse) UnmarshalProto(b []byte) error {
	*m = IdentityResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Identity, err = f.string(m.Identity)
		case 2:
			m.Privilege = f.uint32(m.Privilege)
		case 3:
			m.Policy, err = f.string(m.Policy)
		case 4:
			m.CreatedAt, err = f.time(m.CreatedAt)
		case 5:
			m.CreatedBy, err = f.string(m.CreatedBy)
		case 6:
			m.IsServiceAccount = f.bool(m.IsServiceAccount)
		case 7:
			m.ServiceAccounts, err = f.repeatedString(m.ServiceAccounts)
		case 8:
			err = f.stringMapEntry(&m.Tags)
		}
		return err
	})
}
