package clientcmd

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
	"github.com/kmsledger/kmsledger/api/wire"
)

// ---- enclaves ----

func addEnclaveAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		return kc.CreateEnclave(ctx, a[0])
	})
}

func rmEnclaveAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		return kc.DeleteEnclave(ctx, a[0])
	})
}

func statEnclaveAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		e, err := kc.EnclaveStatus(ctx, a[0])
		if err != nil {
			return err
		}
		return printOne(c.App.Writer, c.Bool("json"), enclaveOut(e))
	})
}

func lsEnclaveAction(c *cli.Context) error {
	return runClient(c, 0, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		l, err := kc.AllEnclaves(ctx, first(a))
		if err != nil {
			return err
		}
		items := make([]enclaveJSON, len(l))
		for i := range l {
			items[i] = enclaveOut(&l[i])
		}
		return printList(c.App.Writer, c.Bool("json"), items, func(e enclaveJSON) string { return e.Name })
	})
}

// ---- identities ----

// identityRequest builds the IDENTITY:CREATE request of add-identity.
func identityRequest(id string, admin, service bool, tags []string) (*wire.CreateIdentityRequest, error) {
	req := &wire.CreateIdentityRequest{Identity: id, IsServiceAccount: service}
	if !wire.ValidIdentity(id) {
		return nil, fmt.Errorf("%w: %q is not an identity (h1:...)", ErrUsage, id)
	}
	if admin {
		req.Privilege = wire.PrivilegeName(wire.PrivilegeAdmin)
	}
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: --tag %q: want KEY=VALUE", ErrUsage, t)
		}
		if req.Tags == nil {
			req.Tags = make(map[string]string)
		}
		req.Tags[k] = v
	}
	return req, nil
}

func addIdentityAction(c *cli.Context) error {
	return runClient(c, 0, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		if len(a) == 1 {
			req, err := identityRequest(a[0], c.Bool("admin"), c.Bool("service"), c.StringSlice("tag"))
			if err != nil {
				return err
			}
			return kc.CreateIdentity(ctx, c.String("enclave"), req)
		}
		return addNewIdentity(ctx, c, kc)
	})
}

// addNewIdentity is add-identity without IDENTITY (as minkms does it):
// it makes a new API key, creates its identity and prints both. The key
// exists only in this process until it is printed, and it is printed
// only once the identity exists; the server never sees it.
func addNewIdentity(ctx context.Context, c *cli.Context, kc *client.Client) error {
	key, err := wire.GenerateAPIKey(rand.Reader)
	if err != nil {
		return err
	}
	id, err := identityOfKey(key)
	if err != nil {
		return err
	}
	req, err := identityRequest(id, c.Bool("admin"), c.Bool("service"), c.StringSlice("tag"))
	if err != nil {
		return err
	}
	enclave := c.String("enclave")
	if err := kc.CreateIdentity(ctx, enclave, req); err != nil {
		return err
	}
	privilege := "User"
	if c.Bool("admin") {
		privilege = "Admin"
	}
	if c.Bool("json") {
		return PrintJSON(c.App.Writer, struct {
			APIKey    string `json:"api_key"`
			Identity  string `json:"identity"`
			Enclave   string `json:"enclave"`
			Privilege string `json:"privilege"`
		}{key, id, enclave, privilege})
	}
	_, err = fmt.Fprintf(c.App.Writer, "API key:  %s\nIdentity: %s\n\n"+
		"The API key is shown only this once: store it now (the server keeps only its identity).\n", key, id)
	return err
}

func rmIdentityAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		return kc.DeleteIdentity(ctx, c.String("enclave"), a[0])
	})
}

func getIdentityAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		id, err := kc.GetIdentity(ctx, c.String("enclave"), a[0])
		if err != nil {
			return err
		}
		return printOne(c.App.Writer, c.Bool("json"), identityOut(id))
	})
}

func lsIdentityAction(c *cli.Context) error {
	return runClient(c, 0, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		l, err := kc.AllIdentities(ctx, c.String("enclave"), first(a))
		if err != nil {
			return err
		}
		items := make([]identityJSON, len(l))
		for i := range l {
			items[i] = identityOut(&l[i])
		}
		return printList(c.App.Writer, c.Bool("json"), items, func(i identityJSON) string { return i.Identity })
	})
}

// ---- policies ----

func addPolicyAction(c *cli.Context) error {
	return runClient(c, 2, 2, func(ctx context.Context, kc *client.Client, a []string) error {
		f, err := os.Open(a[1])
		if err != nil {
			return err
		}
		defer f.Close()
		req, err := client.ParsePolicyFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", a[1], err)
		}
		req.Name = a[0]
		return kc.CreatePolicy(ctx, c.String("enclave"), req)
	})
}

func setPolicyAction(c *cli.Context) error {
	return runClient(c, 2, 2, func(ctx context.Context, kc *client.Client, a []string) error {
		return kc.AssignPolicy(ctx, c.String("enclave"), a[1], a[0])
	})
}

func rmPolicyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		return kc.DeletePolicy(ctx, c.String("enclave"), a[0])
	})
}

func getPolicyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		p, err := kc.GetPolicy(ctx, c.String("enclave"), a[0])
		if err != nil {
			return err
		}
		return PrintPolicy(c.App.Writer, c.Bool("json"), p)
	})
}

func statPolicyAction(c *cli.Context) error {
	return runClient(c, 1, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		p, err := kc.PolicyStatus(ctx, c.String("enclave"), a[0])
		if err != nil {
			return err
		}
		out := policyJSON{Name: p.Name, CreatedAt: formatTime(p.CreatedAt), CreatedBy: p.CreatedBy}
		return printOne(c.App.Writer, c.Bool("json"), out)
	})
}

func lsPolicyAction(c *cli.Context) error {
	return runClient(c, 0, 1, func(ctx context.Context, kc *client.Client, a []string) error {
		l, err := kc.AllPolicies(ctx, c.String("enclave"), first(a))
		if err != nil {
			return err
		}
		items := make([]policyJSON, len(l))
		for i, p := range l {
			items[i] = policyJSON{Name: p.Name, CreatedAt: formatTime(p.CreatedAt), CreatedBy: p.CreatedBy}
		}
		return printList(c.App.Writer, c.Bool("json"), items, func(p policyJSON) string { return p.Name })
	})
}

// first returns a[0], or "" if a is empty.
func first(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}
