package wire

import "time"

// A rule set maps a command text name (such as "KEY:GENERATE") to its
// patterns, sorted. On the wire it is map<string,RuleSet> with
// RuleSet{1 Rules map<string,Rule>} and Rule an empty message.

// CreatePolicyRequest is the message of POLICY:CREATE, which creates or
// overwrites a policy.
type CreatePolicyRequest struct {
	Name  string              // 1
	Allow map[string][]string // 2
	Deny  map[string][]string // 3
}

// MarshalProto returns the proto3 encoding of m.
func (m *CreatePolicyRequest) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendRuleSets(b, 2, m.Allow)
	return appendRuleSets(b, 3, m.Deny)
}

// UnmarshalProto resets m and decodes b into it.
func (m *CreatePolicyRequest) UnmarshalProto(b []byte) error {
	*m = CreatePolicyRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			err = f.ruleSetEntry(&m.Allow)
		case 3:
			err = f.ruleSetEntry(&m.Deny)
		}
		return err
	})
}

// DeletePolicyRequest is the message of POLICY:DELETE.
type DeletePolicyRequest struct {
	Name string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *DeletePolicyRequest) MarshalProto() []byte { return appendString(nil, 1, m.Name) }

// UnmarshalProto resets m and decodes b into it.
func (m *DeletePolicyRequest) UnmarshalProto(b []byte) error {
	*m = DeletePolicyRequest{}
	return decodeName(b, &m.Name)
}

// PolicyRequest is the message of POLICY:GET and POLICY:STATUS.
type PolicyRequest struct {
	Name string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *PolicyRequest) MarshalProto() []byte { return appendString(nil, 1, m.Name) }

// UnmarshalProto resets m and decodes b into it.
func (m *PolicyRequest) UnmarshalProto(b []byte) error {
	*m = PolicyRequest{}
	return decodeName(b, &m.Name)
}

// PolicyResponse answers POLICY:GET.
type PolicyResponse struct {
	Name      string              // 1
	Allow     map[string][]string // 2
	Deny      map[string][]string // 3
	CreatedAt time.Time           // 4
	CreatedBy string              // 5
}

// MarshalProto returns the proto3 encoding of m.
func (m *PolicyResponse) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendRuleSets(b, 2, m.Allow)
	b = appendRuleSets(b, 3, m.Deny)
	b = appendTime(b, 4, m.CreatedAt)
	return appendString(b, 5, m.CreatedBy)
}

// UnmarshalProto resets m and decodes b into it.
func (m *PolicyResponse) UnmarshalProto(b []byte) error {
	*m = PolicyResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 2:
			err = f.ruleSetEntry(&m.Allow)
		case 3:
			err = f.ruleSetEntry(&m.Deny)
		case 4:
			m.CreatedAt, err = f.time(m.CreatedAt)
		case 5:
			m.CreatedBy, err = f.string(m.CreatedBy)
		}
		return err
	})
}

// PolicyStatusResponse answers POLICY:STATUS and is the element of
// ListPoliciesResponse. Field numbers 2 and 3 are unused.
type PolicyStatusResponse struct {
	Name      string    // 1
	CreatedAt time.Time // 4
	CreatedBy string    // 5
}

// MarshalProto returns the proto3 encoding of m.
func (m *PolicyStatusResponse) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Name)
	b = appendTime(b, 4, m.CreatedAt)
	return appendString(b, 5, m.CreatedBy)
}

// UnmarshalProto resets m and decodes b into it.
func (m *PolicyStatusResponse) UnmarshalProto(b []byte) error {
	*m = PolicyStatusResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Name, err = f.string(m.Name)
		case 4:
			m.CreatedAt, err = f.time(m.CreatedAt)
		case 5:
			m.CreatedBy, err = f.string(m.CreatedBy)
		}
		return err
	})
}

// AssignPolicyRequest is the message of POLICY:ASSIGN.
type AssignPolicyRequest struct {
	Identity string // 1
	Policy   string // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *AssignPolicyRequest) MarshalProto() []byte {
	return appendString(appendString(nil, 1, m.Identity), 2, m.Policy)
}

// UnmarshalProto resets m and decodes b into it.
func (m *AssignPolicyRequest) UnmarshalProto(b []byte) error {
	*m = AssignPolicyRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Identity, err = f.string(m.Identity)
		case 2:
			m.Policy, err = f.string(m.Policy)
		}
		return err
	})
}
