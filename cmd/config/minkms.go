package config

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// hsmKinds are the keys of HSM that name a backend.
var hsmKinds = []string{"soft", "pkcs11", "minkms"}

// hsmMapToList rewrites the `hsm:` section of a configuration document
// from minkms's map form,
//
//	hsm:
//	  NAME:
//	    KIND:
//	      field: value
//
// into kmsledger's list form (`- name: NAME` + `KIND: {...}`), in the
// same order, so that the file is then decoded with unknown fields
// refused as usual. The list form is left as it is.
func hsmMapToList(doc *yaml.Node) error {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "hsm" || root.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		m := root.Content[i+1]
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: m.Line, Column: m.Column}
		for j := 0; j+1 < len(m.Content); j += 2 {
			name, body := m.Content[j], m.Content[j+1]
			if body.Kind != yaml.MappingNode {
				return fmt.Errorf("config: line %d: hsm.%s: want a mapping of an HSM kind (%s) to its settings", body.Line, name.Value, kindList())
			}
			for k := 0; k+1 < len(body.Content); k += 2 {
				if kind := body.Content[k].Value; !slices.Contains(hsmKinds, kind) {
					return fmt.Errorf("config: line %d: hsm.%s: unknown HSM kind %q (want %s)", body.Content[k].Line, name.Value, kind, kindList())
				}
			}
			entry := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: body.Line, Column: body.Column}
			entry.Content = append([]*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name"}, name}, body.Content...)
			seq.Content = append(seq.Content, entry)
		}
		root.Content[i+1] = seq
	}
	return nil
}

func kindList() string {
	return "soft, pkcs11 or minkms"
}
