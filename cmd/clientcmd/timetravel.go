package clientcmd

// Time-travel client commands: the state, who could do what, what changed
// and the ledger events, at any point of the ledger's history (the
// /v1/ledger API).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
)

// pointUsage explains the values of --at, --from, --to, --since, --until.
const pointUsage = "a sequence number, an RFC 3339 time, a date (2006-01-02, UTC), \"now\" or a time ago (-36h, -7d)"

// timeTravelCommands returns new instances of the time-travel commands:
// state, who-can, and the audit command whose subcommands are
// auditClientSubcommands, "audit requests" and those of auditLocal.
func timeTravelCommands(auditLocal func() []*cli.Command) []*cli.Command {
	audit := append(auditClientSubcommands(), auditRequestsCommand()) // requests: auditreq.go
	if auditLocal != nil {
		audit = append(audit, auditLocal()...)
	}
	return []*cli.Command{
		{
			Name: "state", Usage: "show enclaves, keys, identities and policies as they were at a point of the ledger",
			Action: stateAction,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "at", Required: true, Usage: "the point: " + pointUsage},
			},
		},
		{
			Name: "who-can", Usage: "list every identity that was allowed to run a command on a key, and why",
			Action: whoCanAction,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "key", Usage: "the key (or the policy or identity a POLICY:* or IDENTITY:* command names)"},
				&cli.StringFlag{Name: "command", Value: "KEY:DECRYPT", Usage: "the command, e.g. KEY:DECRYPT, KEY:GENERATE"},
				&cli.StringFlag{Name: "at", Value: "now", Usage: "the point: " + pointUsage},
			},
		},
		{
			Name: "audit", Usage: "audit the ledger: what changed, its events; verify its hash chains, export them",
			Subcommands: audit,
		},
	}
}

// auditClientSubcommands returns the audit subcommands that query a
// server, each with the connection flags.
func auditClientSubcommands() []*cli.Command {
	filters := func() []cli.Flag {
		return []cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "only events of this key"},
			&cli.StringFlag{Name: "identity", Usage: "only events by or about this identity"},
			&cli.StringFlag{Name: "type", Usage: "only events of this type, or of a prefix* (e.g. key.*, policy.*)"},
			&cli.StringFlag{Name: "since", Usage: "only events after this sequence, or at or after this time: " + pointUsage},
			&cli.StringFlag{Name: "until", Usage: "only events up to this sequence or time: " + pointUsage},
		}
	}
	cmds := []*cli.Command{
		{
			Name: "diff", Usage: "show what changed between two points of the ledger",
			Action: auditDiffAction,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Required: true, Usage: "the first point: " + pointUsage},
				&cli.StringFlag{Name: "to", Usage: "the second point (default: the newest event): " + pointUsage},
			},
		},
		{
			Name: "events", Usage: "list ledger events, oldest first",
			Action: auditEventsAction,
			Flags: append(filters(),
				&cli.IntFlag{Name: "limit", Usage: "at most this many events (default: all)"}),
		},
		{
			Name: "tail", Usage: "show the newest ledger events; with -f, keep printing new ones",
			Action: auditTailAction,
			Flags: append(filters(),
				&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 10, Usage: "how many of the newest events to show first"},
				&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep polling for new events"},
				&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "how often to poll with -f"}),
		},
	}
	cmds = append(cmds, &cli.Command{
		Name: "check", Usage: "ask a running node to recompute its hash chains and check every signed checkpoint (root; any node of a cluster)",
		Action: auditCheckAction,
	})
	for _, c := range cmds {
		c.Flags = append(c.Flags, ConnFlags()...)
	}
	return cmds
}

func auditCheckAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		v, err := kc.VerifyLedger(ctx)
		if err != nil {
			return err
		}
		w := c.App.Writer
		if r := v.Report; r != nil {
			fmt.Fprintf(w, "LEDGER  %d..%d, signed through %d\n", r.Ledger.From, r.Ledger.Last, r.Ledger.SignedThrough)
			fmt.Fprintf(w, "AUDIT   %d..%d, signed through %d\n", r.Audit.From, r.Audit.Last, r.Audit.SignedThrough)
			fmt.Fprintf(w, "checkpoints verified: %d\n", r.Checkpoints)
		}
		for _, k := range v.Rejected {
			fmt.Fprintf(w, "signing key not vouched for by the HSM: %s\n", k)
		}
		if !v.OK {
			return fmt.Errorf("verification failed on %s: %s", nodeName(v.Node), v.Error)
		}
		fmt.Fprintf(w, "OK (%s)\n", nodeName(v.Node))
		return nil
	})
}

func nodeName(n string) string {
	if n == "" {
		return "this node"
	}
	return "node " + n
}

// parsePoint reads a point of the ledger given on the command line.
func parsePoint(flag, s string, now time.Time) (client.Point, error) {
	p, err := client.ParsePointAt(s, now)
	if err != nil {
		return client.Point{}, fmt.Errorf("%w: --%s %q: want %s", ErrUsage, flag, s, pointUsage)
	}
	return p, nil
}

func stateAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		p, err := parsePoint("at", c.String("at"), time.Now())
		if err != nil {
			return err
		}
		st, err := kc.LedgerState(ctx, p, c.String("enclave"))
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, st)
		}
		return printState(c.App.Writer, st)
	})
}

// printState writes a past state as indented text.
func printState(w io.Writer, st *client.LedgerState) error {
	fmt.Fprintf(w, "State after event %d\n", st.Seq)
	if len(st.Enclaves) == 0 {
		fmt.Fprintln(w, "(no enclave)")
	}
	for _, e := range st.Enclaves {
		fmt.Fprintf(w, "\nEnclave %s (created %s by %s)\n", e.Name, formatTime(e.CreatedAt), e.CreatedBy)
		fmt.Fprintln(w, "  Keys:")
		for _, k := range e.Keys {
			var vs []string
			for _, v := range k.Versions {
				vs = append(vs, fmt.Sprintf("v%d %s %s", v.Version, v.Type, v.State))
			}
			state := k.State
			if k.DeletionDeadline != nil {
				state += " until " + formatTime(*k.DeletionDeadline)
			}
			fmt.Fprintf(w, "    %s  %s  [%s]\n", k.Name, state, strings.Join(vs, ", "))
		}
		for _, t := range e.Tombstones {
			fmt.Fprintf(w, "    %s  destroyed %s by %s (name reserved)\n", t.Name, formatTime(t.DestroyedAt), t.DestroyedBy)
		}
		fmt.Fprintln(w, "  Identities:")
		for _, x := range e.Identities {
			line := "    " + x.Identity + "  " + x.Privilege
			if x.Policy != "" {
				line += "  policy " + x.Policy
			}
			if x.ServiceAccount {
				line += "  service account of " + x.Parent
			}
			for _, k := range slices.Sorted(maps.Keys(x.Tags)) {
				line += "  " + k + "=" + x.Tags[k]
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w, "  Policies:")
		for _, p := range e.Policies {
			fmt.Fprintf(w, "    %s  %s\n", p.Name, rulesText(p.Allow, p.Deny))
		}
	}
	return nil
}

// rulesText writes "allow KEY:DECRYPT k*; deny KEY:DELETE *".
func rulesText(allow, deny map[string][]string) string {
	var parts []string
	for _, r := range []struct {
		verb  string
		rules map[string][]string
	}{{"allow", allow}, {"deny", deny}} {
		for _, cmd := range slices.Sorted(maps.Keys(r.rules)) {
			parts = append(parts, r.verb+" "+cmd+" "+strings.Join(r.rules[cmd], " "))
		}
	}
	if len(parts) == 0 {
		return "(no rules)"
	}
	return strings.Join(parts, "; ")
}

func whoCanAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		p, err := parsePoint("at", c.String("at"), time.Now())
		if err != nil {
			return err
		}
		if c.String("enclave") == "" {
			return fmt.Errorf("%w: who-can needs --enclave (or MINIO_KMS_ENCLAVE)", ErrUsage)
		}
		r, err := kc.WhoCan(ctx, c.String("enclave"), c.String("key"), c.String("command"), p)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, r)
		}
		w := c.App.Writer
		fmt.Fprintf(w, "%s on %s/%s after event %d:\n", r.Command, r.Enclave, r.Key, r.Seq)
		if len(r.Grants) == 0 {
			fmt.Fprintln(w, "(nobody: the ledger was not initialized yet)")
		}
		for _, g := range r.Grants {
			fmt.Fprintf(w, "%s  %-6s  %s\n", g.Identity, g.Via, g.Reason)
		}
		return nil
	})
}

func auditDiffAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		now := time.Now()
		from, err := parsePoint("from", c.String("from"), now)
		if err != nil {
			return err
		}
		to, err := parsePoint("to", c.String("to"), now)
		if err != nil {
			return err
		}
		d, err := kc.LedgerDiff(ctx, from, to, c.String("enclave"))
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return PrintJSON(c.App.Writer, d)
		}
		w := c.App.Writer
		fmt.Fprintf(w, "Changes from event %d to event %d:\n", d.From, d.To)
		if len(d.Changes) == 0 {
			fmt.Fprintln(w, "(none)")
		}
		for _, ch := range d.Changes {
			sign := map[string]string{"added": "+", "removed": "-"}[ch.Op]
			if sign == "" {
				sign = "~"
			}
			fmt.Fprintf(w, "%s %s: %s\n", sign, ch.Enclave, ch.Description)
		}
		return nil
	})
}

// eventFilter builds the filter of the events and tail commands.
func eventFilter(c *cli.Context) (client.EventFilter, error) {
	now := time.Now()
	f := client.EventFilter{Enclave: c.String("enclave"), Key: c.String("key"), Identity: c.String("identity"), Type: c.String("type")}
	var err error
	f.Since, f.Until, err = timeRange(c, now)
	return f, err
}

// timeRange parses the --since and --until points of a query.
func timeRange(c *cli.Context, now time.Time) (since, until client.Point, err error) {
	if since, err = parsePoint("since", c.String("since"), now); err != nil {
		return since, until, err
	}
	until, err = parsePoint("until", c.String("until"), now)
	return since, until, err
}

func auditEventsAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		f, err := eventFilter(c)
		if err != nil {
			return err
		}
		limit := c.Int("limit")
		if limit < 0 {
			return fmt.Errorf("%w: --limit %d", ErrUsage, limit)
		}
		ew := newEventWriter(c.App.Writer, c.Bool("json"))
		return kc.EachLedgerEvents(ctx, f, limit, ew.write)
	})
}

func auditTailAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		f, err := eventFilter(c)
		if err != nil {
			return err
		}
		if n := c.Int("lines"); n < 1 || n > 10000 {
			return fmt.Errorf("%w: --lines %d: want 1 to 10000", ErrUsage, n)
		}
		f.Tail = c.Int("lines")
		ew := newEventWriter(c.App.Writer, c.Bool("json"))
		l, err := kc.LedgerEvents(ctx, f)
		if err != nil {
			return err
		}
		if err := ew.write(l.Events); err != nil || !c.Bool("follow") {
			return err
		}
		return kc.FollowLedgerEvents(ctx, f, l.Last, c.Duration("interval"), ew.write)
	})
}

// lineWriter prints items one per line: as JSON with --json, otherwise
// as text.
type lineWriter[T any] struct {
	w    io.Writer
	json bool
	text func(T) string
	n    int // items written
}

func (lw *lineWriter[T]) write(items []T) error {
	for _, it := range items {
		lw.n++
		line := ""
		if lw.json {
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			line = string(b)
		} else {
			line = lw.text(it)
		}
		if _, err := fmt.Fprintln(lw.w, line); err != nil {
			return err
		}
	}
	return nil
}

// eventWriter prints ledger events.
type eventWriter = lineWriter[client.LedgerEvent]

func newEventWriter(w io.Writer, asJSON bool) *eventWriter {
	return &eventWriter{w: w, json: asJSON, text: func(ev client.LedgerEvent) string {
		return fmt.Sprintf("%d  %s  %-26s %-10s %s  %s", ev.Seq, formatTime(ev.Time), ev.Type,
			orDash(ev.Enclave), subjectName(ev.Aggregate), ev.Actor)
	}}
}

// subjectName shortens "ledger.<enclave>.key.<name>" to "key <name>".
func subjectName(aggregate string) string {
	parts := strings.SplitN(aggregate, ".", 4)
	if len(parts) == 4 {
		return parts[2] + " " + parts[3]
	}
	return aggregate
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
