package clientcmd

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kmsledger/kmsledger/api/wire"
)

// JSON shapes printed with --json. Field names are snake_case, like the
// protocol's JSON names.
type (
	enclaveJSON struct {
		Name      string `json:"name"`
		CreatedAt string `json:"created_at,omitempty"`
		CreatedBy string `json:"created_by,omitempty"`
	}
	policyJSON struct {
		Name      string              `json:"name"`
		Allow     map[string][]string `json:"allow,omitempty"`
		Deny      map[string][]string `json:"deny,omitempty"`
		CreatedAt string              `json:"created_at,omitempty"`
		CreatedBy string              `json:"created_by,omitempty"`
	}
	identityJSON struct {
		Identity         string            `json:"identity"`
		Privilege        string            `json:"privilege"`
		Policy           string            `json:"policy,omitempty"`
		CreatedAt        string            `json:"created_at,omitempty"`
		CreatedBy        string            `json:"created_by,omitempty"`
		IsServiceAccount bool              `json:"is_service_account,omitempty"`
		ServiceAccounts  []string          `json:"service_accounts,omitempty"`
		Tags             map[string]string `json:"tags,omitempty"`
	}
)

func enclaveOut(e *wire.EnclaveStatusResponse) enclaveJSON {
	return enclaveJSON{Name: e.Name, CreatedAt: formatTime(e.CreatedAt), CreatedBy: e.CreatedBy}
}

func policyOut(p *wire.PolicyResponse) policyJSON {
	return policyJSON{Name: p.Name, Allow: p.Allow, Deny: p.Deny, CreatedAt: formatTime(p.CreatedAt), CreatedBy: p.CreatedBy}
}

func identityOut(i *wire.IdentityResponse) identityJSON {
	priv := wire.PrivilegeName(i.Privilege)
	if priv == "" {
		priv = strconv.FormatUint(uint64(i.Privilege), 10)
	}
	return identityJSON{
		Identity: i.Identity, Privilege: priv, Policy: i.Policy, CreatedAt: formatTime(i.CreatedAt),
		CreatedBy: i.CreatedBy, IsServiceAccount: i.IsServiceAccount, ServiceAccounts: i.ServiceAccounts, Tags: i.Tags,
	}
}

func (e enclaveJSON) fields() [][2]string {
	return [][2]string{{"Name", e.Name}, {"Created", e.CreatedAt}, {"Created by", e.CreatedBy}}
}

func (p policyJSON) fields() [][2]string {
	f := [][2]string{{"Name", p.Name}, {"Created", p.CreatedAt}, {"Created by", p.CreatedBy}}
	for _, rules := range []struct {
		label string
		m     map[string][]string
	}{{"Allow", p.Allow}, {"Deny", p.Deny}} {
		for _, cmd := range slices.Sorted(maps.Keys(rules.m)) {
			f = append(f, [2]string{rules.label + " " + cmd, strings.Join(rules.m[cmd], " ")})
		}
	}
	return f
}

func (i identityJSON) fields() [][2]string {
	f := [][2]string{
		{"Identity", i.Identity}, {"Privilege", i.Privilege}, {"Policy", i.Policy},
		{"Created", i.CreatedAt}, {"Created by", i.CreatedBy},
		{"Service account", strconv.FormatBool(i.IsServiceAccount)},
	}
	if len(i.ServiceAccounts) > 0 {
		f = append(f, [2]string{"Service accounts", strings.Join(i.ServiceAccounts, " ")})
	}
	for _, k := range slices.Sorted(maps.Keys(i.Tags)) {
		f = append(f, [2]string{"Tag " + k, i.Tags[k]})
	}
	return f
}

// fielder is an output shape with a text form.
type fielder interface{ fields() [][2]string }

// printOne writes one object as JSON or as label/value lines.
func printOne(w io.Writer, asJSON bool, v fielder) error {
	if asJSON {
		return PrintJSON(w, v)
	}
	return printFields(w, v.fields())
}

// printList writes a list as a JSON array, or one name per line.
func printList[T any](w io.Writer, asJSON bool, items []T, name func(T) string) error {
	if asJSON {
		if items == nil {
			items = []T{}
		}
		return PrintJSON(w, items)
	}
	for _, it := range items {
		if _, err := fmt.Fprintln(w, name(it)); err != nil {
			return err
		}
	}
	return nil
}

// PrintPolicy writes a policy as get-policy does: JSON, or label/value
// lines with one line per command.
func PrintPolicy(w io.Writer, asJSON bool, p *wire.PolicyResponse) error {
	return printOne(w, asJSON, policyOut(p))
}

// PrintKeyList writes keys as ls-key does: a JSON array, or one line per
// key (keyListName).
func PrintKeyList(w io.Writer, asJSON bool, keys []wire.KeyInfo) error {
	return printList(w, asJSON, keys, keyListName)
}

// keyListName is a key's line in ls-key: its name, and its state unless
// enabled.
func keyListName(k wire.KeyInfo) string {
	if k.State != "enabled" {
		return k.Name + " (" + k.State + ")"
	}
	return k.Name
}

// PrintKeyInfo writes a key as stat-key does: its fields, then one line
// per version (only that version if only is not 0).
func PrintKeyInfo(w io.Writer, k *wire.KeyInfo, only uint32) error {
	fields := [][2]string{{"Name", k.Name}, {"State", k.State}}
	if k.DeletionDeadline != nil {
		fields = append(fields, [2]string{"Deletion at", formatTime(*k.DeletionDeadline)})
	}
	fields = append(fields, [2]string{"Created", formatTime(k.CreatedAt)}, [2]string{"Created by", k.CreatedBy})
	if err := printFields(w, fields); err != nil {
		return err
	}
	fmt.Fprintf(w, "%-8s %-9s %-9s %-20s %-20s %-11s %-11s %-11s %-24s %s\n", "VERSION", "TYPE", "STATE", "CREATED", "LAST USED",
		"ENCRYPTED", "DECRYPTED", "OLD-FORMAT", "CIPHERTEXT FORMAT", "CREATED BY")
	for _, v := range k.Versions {
		if only != 0 && v.Version != only {
			continue
		}
		used := "-"
		if v.LastUsed != nil {
			used = formatTime(*v.LastUsed)
		}
		format := "-"
		if v.CiphertextFormat != 0 {
			format = fmt.Sprintf("v%02d %s", v.CiphertextFormat, v.CiphertextAEAD)
		}
		u := v.Usage
		fmt.Fprintf(w, "%-8s %-9s %-9s %-20s %-20s %-11d %-11d %-11d %-24s %s\n", strconv.FormatUint(uint64(v.Version), 10), v.Type, v.State,
			formatTime(v.CreatedAt), used, u.Encryptions, u.Decryptions, u.OldFormatDecryptions, format, v.CreatedBy)
	}
	_, err := fmt.Fprintln(w, "ENCRYPTED, DECRYPTED and OLD-FORMAT (decryptions of format-1, KES or MinIO ciphertexts) count uses on the answering node since it started.")
	return err
}
