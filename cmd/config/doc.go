// Package config owns the server configuration file of kmsledger
// (`kmsledger server --config FILE`): its types (Config, HSM and the
// backends Soft, PKCS11 and Remote), reading it (YAML, version: v1,
// ${NAME} expanded from the environment, unknown fields refused, the
// hsm: section also in minkms's map form) and validating it.
//
// It only describes a configuration; opening what it names is the job
// of package cmd/node, and flags that override it belong to
// cmd/kmsledger. It may import the standard library and gopkg.in/yaml.v3
// only, no package of this module.
package config
