package api

// HMAC, verify, random and hash endpoints of the Transit API (transit.go).

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/kmsledger/kmsledger/api/transit"
	"github.com/kmsledger/kmsledger/hsm"
)

// algorithm is the HMAC or hash algorithm of the path or the body
// ("sha2-256" by default).
func algorithm(r *http.Request, f transit.Fields) (string, error) {
	if a := r.PathValue("alg"); a != "" {
		return a, nil
	}
	for _, name := range []string{"algorithm", "hash_algorithm"} {
		if a, ok, err := f.String(name); err != nil {
			return "", vaultBad(err.Error())
		} else if ok && a != "" {
			return a, nil
		}
	}
	return "sha2-256", nil
}

// POST hmac/{name}[/{alg}]: "vault:vN:" ‖ base64(HMAC) per input.
func (v *vaultAPI) hmac(w http.ResponseWriter, r *http.Request, in routeReq) {
	v.onKey(w, r, in, func(c *cryptoReq, f transit.Fields) (map[string]any, error) {
		alg, err := algorithm(r, f)
		if err != nil {
			return nil, err
		}
		if !f.Has("input") {
			return nil, vaultBad("missing input for HMAC")
		}
		msg, _, err := f.Base64("input")
		if err != nil {
			return nil, vaultBad("unable to decode input as base64: " + err.Error())
		}
		n, _, err := f.Int("key_version")
		switch {
		case err != nil:
			return nil, vaultBad(err.Error())
		case n < 0 || n > int64(c.ks.latest):
			return nil, vaultBad("invalid key version")
		case n != 0 && n < int64(c.ks.settings.MinEncryptionVersion):
			return nil, vaultBad("cannot generate HMAC: version is too old (disallowed by policy)")
		}
		k, err := c.key(uint32(n))
		if err != nil {
			return nil, err
		}
		mac, err := k.TransitHMAC(alg, msg)
		if err != nil {
			return nil, vaultBad("unsupported algorithm " + strconv.Quote(alg))
		}
		return map[string]any{"hmac": transit.FormatCiphertext(k.Version(), mac)}, nil
	})
}

// POST verify/{name}[/{alg}]: whether an HMAC of input is valid.
// Signatures are not served (kmsledger keys do not sign).
func (v *vaultAPI) verify(w http.ResponseWriter, r *http.Request, in routeReq) {
	v.onKey(w, r, in, func(c *cryptoReq, f transit.Fields) (map[string]any, error) {
		if f.Has("signature") {
			return nil, vaultBad("signature verification is not supported: kmsledger keys do not sign")
		}
		alg, err := algorithm(r, f)
		if err != nil {
			return nil, err
		}
		s, ok, err := f.String("hmac")
		if err != nil || !ok {
			return nil, vaultBad("missing hmac to verify")
		}
		msg, _, err := f.Base64("input")
		if err != nil {
			return nil, vaultBad("unable to decode input as base64: " + err.Error())
		}
		version, mac, err := transit.ParseHMAC(s)
		switch {
		case err != nil:
			return nil, vaultBad(err.Error())
		case version > c.ks.maxVer:
			return nil, vaultBad("invalid HMAC: version is too new")
		case version < max(c.ks.settings.MinDecryptionVersion, 1):
			return nil, vaultBad("cannot verify HMAC: version is too old (disallowed by policy)")
		}
		k, err := c.key(version)
		if err != nil {
			return nil, err
		}
		want, err := k.TransitHMAC(alg, msg)
		if err != nil {
			return nil, vaultBad("unsupported algorithm " + strconv.Quote(alg))
		}
		return map[string]any{"valid": hmac.Equal(want, mac)}, nil
	})
}

// POST random[/{source}][/{bytes}]: bytes (1 to 128 KiB, default 32) of
// the platform's randomness, base64 or hex.
func (v *vaultAPI) random(w http.ResponseWriter, r *http.Request, in routeReq) {
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	for _, seg := range []string{r.PathValue("a"), r.PathValue("b")} {
		switch seg {
		case "":
		case "platform", "seal", "all":
			f["source"] = seg
		default:
			f["bytes"] = seg
		}
	}
	n, ok, err := f.Int("bytes")
	switch {
	case err != nil:
		v.fail(w, r, vaultBad(err.Error()))
		return
	case !ok:
		n = 32
	case n < 1:
		v.fail(w, r, vaultBad("'bytes' cannot be less than 1"))
		return
	case n > transitMaxRandom:
		v.fail(w, r, vaultBad("'bytes' should be less than 131072"))
		return
	}
	src, _, _ := f.String("source")
	if src != "" && src != "platform" && src != "seal" && src != "all" {
		v.fail(w, r, vaultBad("unsupported random source "+strconv.Quote(src)))
		return
	}
	format, _, _ := f.String("format")
	b := make([]byte, n)
	rand.Read(b)
	var out string
	switch format {
	case "", "base64":
		out = base64.StdEncoding.EncodeToString(b)
	case "hex":
		out = hex.EncodeToString(b)
	default:
		v.fail(w, r, vaultBad("unsupported encoding format "+strconv.Quote(format)+"; must be \"hex\" or \"base64\""))
		return
	}
	v.reply(w, map[string]any{"random_bytes": out})
}

// POST hash[/{alg}]: the hash of input, hex or base64.
func (v *vaultAPI) hash(w http.ResponseWriter, r *http.Request, in routeReq) {
	f, err := fields(r, in)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	if !f.Has("input") {
		v.fail(w, r, vaultBad("input missing"))
		return
	}
	msg, _, err := f.Base64("input")
	if err != nil {
		v.fail(w, r, vaultBad("unable to decode input as base64: "+err.Error()))
		return
	}
	alg, err := algorithm(r, f)
	if err != nil {
		v.fail(w, r, err)
		return
	}
	sum, err := hsm.TransitHash(alg, msg)
	if err != nil {
		v.fail(w, r, vaultBad("unsupported algorithm "+strconv.Quote(alg)))
		return
	}
	format, _, _ := f.String("format")
	var out string
	switch format {
	case "", "hex":
		out = hex.EncodeToString(sum)
	case "base64":
		out = base64.StdEncoding.EncodeToString(sum)
	default:
		v.fail(w, r, vaultBad("unsupported encoding format "+strconv.Quote(format)+"; must be \"hex\" or \"base64\""))
		return
	}
	v.reply(w, map[string]any{"sum": out})
}
