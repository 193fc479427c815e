package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/kmsledger/kmsledger/api/wire"
)

// ErrPolicyFile is wrapped by the errors of ParsePolicyFile.
var ErrPolicyFile = errors.New("invalid policy")

// policyFile is the JSON policy format of the kms-go SDK:
//
//	{"allow": {"KEY:GENERATE": "minio-*", "KEY:DECRYPT": ["a", "b*"]},
//	 "deny":  {"KEY:DELETE": {"*": {}}}}
//
// A rule set is a pattern string, an array of patterns, or an object whose
// keys are the patterns (values are empty objects). The name, created_at and
// created_by fields printed by get-policy --json are accepted and ignored.
type policyFile struct {
	Allow     map[string]json.RawMessage `json:"allow"`
	Deny      map[string]json.RawMessage `json:"deny"`
	Name      string                     `json:"name"`
	CreatedAt string                     `json:"created_at"`
	CreatedBy string                     `json:"created_by"`
}

// ParsePolicyFile reads a JSON policy file (policyFile), as `kmsledger
// add-policy` sends it with CreatePolicy. Command names are matched
// ignoring case and stored in canonical form; empty patterns are dropped;
// patterns are sorted and deduplicated. The returned request has no Name.
func ParsePolicyFile(r io.Reader) (*wire.CreatePolicyRequest, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var doc policyFile
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicyFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the policy object", ErrPolicyFile)
	}
	allow, err := parseRuleSets(doc.Allow)
	if err != nil {
		return nil, fmt.Errorf("allow: %w", err)
	}
	deny, err := parseRuleSets(doc.Deny)
	if err != nil {
		return nil, fmt.Errorf("deny: %w", err)
	}
	return &wire.CreatePolicyRequest{Allow: allow, Deny: deny}, nil
}

func parseRuleSets(raw map[string]json.RawMessage) (map[string][]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[string][]string, len(raw))
	for name, rs := range raw {
		cmd, err := wire.ParseCommand(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPolicyFile, err)
		}
		patterns, err := parseRuleSet(rs)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPolicyFile, name, err)
		}
		key := cmd.String()
		merged := append(out[key], patterns...)
		slices.Sort(merged)
		out[key] = slices.Compact(merged)
	}
	return out, nil
}

// parseRuleSet decodes one rule set: "p", ["p", ...] or {"p": {}, ...}.
func parseRuleSet(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	var patterns []string
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var p string
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		patterns = []string{p}
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &patterns); err != nil {
			return nil, err
		}
	case len(raw) > 0 && raw[0] == '{':
		var m map[string]map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		for p := range m {
			patterns = append(patterns, p)
		}
	default:
		return nil, errors.New("want a pattern string, an array of patterns or an object of patterns")
	}
	patterns = slices.DeleteFunc(patterns, func(p string) bool { return p == "" })
	slices.Sort(patterns)
	return slices.Compact(patterns), nil
}
