package clientcmd

// audit requests: the request audit (AUDIT records, one per API request)
// read through GET /v1/ledger/requests, once or followed.

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
)

// Limits of the requests command.
const (
	maxRequestLines     = 10000 // the server's largest tail
	followRequestLines  = 10    // the newest records -f prints first by default
	maxTextRequestItems = 3     // items of a kms batch shown on one text line
)

// auditRequestsCommand returns a new instance of "audit requests".
func auditRequestsCommand() *cli.Command {
	return &cli.Command{
		Name:  "requests",
		Usage: "list audited API requests (allowed, denied and failed), oldest first; with -f, keep printing new ones",
		Description: "One line per request: time, identity, enclave, commands and keys, status, error.\n" +
			"--since and --until take an AUDIT sequence number or a time. Without -n, all matching\n" +
			"requests are listed (-f alone starts with the newest " + strconv.Itoa(followRequestLines) + ").",
		Action: auditRequestsAction,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "key", Usage: "only requests on this key"},
			&cli.StringFlag{Name: "identity", Usage: "only requests made by this identity"},
			&cli.StringFlag{Name: "command", Usage: "only requests with this command (KEY:DECRYPT, KEY:*) or route (\"GET /v1/admin/{enclave}/keys/{name}\")"},
			&cli.StringFlag{Name: "result", Usage: "only requests with this result: ok (2xx), denied (403), error (other non-2xx) or a status (404)"},
			&cli.StringFlag{Name: "since", Usage: "only requests after this AUDIT sequence, or at or after this time: " + pointUsage},
			&cli.StringFlag{Name: "until", Usage: "only requests up to this AUDIT sequence or time: " + pointUsage},
			&cli.IntFlag{Name: "limit", Usage: "at most about this many requests (default: all; a batch is never split)"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "only the newest N matching requests"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep polling for new requests"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "how often to poll with -f"},
		}, ConnFlags()...),
	}
}

// requestFilter builds the filter of the requests command.
func requestFilter(c *cli.Context) (client.RequestFilter, error) {
	now := time.Now()
	f := client.RequestFilter{Enclave: c.String("enclave"), Key: c.String("key"), Identity: c.String("identity"),
		Command: c.String("command"), Result: c.String("result")}
	if client.CheckResult(f.Result) != nil {
		return f, fmt.Errorf("%w: --result %q: want ok, denied, error or an HTTP status", ErrUsage, f.Result)
	}
	var err error
	f.Since, f.Until, err = timeRange(c, now)
	return f, err
}

func auditRequestsAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		f, err := requestFilter(c)
		if err != nil {
			return err
		}
		limit, lines := c.Int("limit"), c.Int("lines")
		if limit < 0 {
			return fmt.Errorf("%w: --limit %d", ErrUsage, limit)
		}
		if c.IsSet("lines") && (lines < 1 || lines > maxRequestLines) {
			return fmt.Errorf("%w: --lines %d: want 1 to %d", ErrUsage, lines, maxRequestLines)
		}
		follow := c.Bool("follow")
		if follow && !c.IsSet("lines") && f.Since.IsZero() {
			lines = followRequestLines
		}
		rw := newRequestWriter(c.App.Writer, c.Bool("json"))
		var last uint64
		if lines > 0 {
			f.Tail = lines
			l, err := kc.AuditRequests(ctx, f)
			if err != nil {
				return err
			}
			if err := rw.write(l.Records); err != nil {
				return err
			}
			f.Tail, last = 0, l.Last
		} else {
			n, err := kc.EachAuditRequests(ctx, f, limit, rw.write)
			if err != nil || (limit > 0 && rw.n >= limit) {
				return err
			}
			last = n
		}
		if !follow {
			return nil
		}
		return kc.FollowAuditRequests(ctx, f, last, c.Duration("interval"), rw.write)
	})
}

// requestWriter prints audited requests.
type requestWriter = lineWriter[client.AuditRequest]

func newRequestWriter(w io.Writer, asJSON bool) *requestWriter {
	return &requestWriter{w: w, json: asJSON, text: func(r client.AuditRequest) string {
		line := fmt.Sprintf("%s  %s  %s  %s  %d", formatTime(r.Time), orDash(r.Identity), orDash(r.Enclave), requestItems(r), r.Status)
		if r.Error != "" {
			line += "  " + r.Error
		}
		return line + requestCuts(r)
	}}
}

// requestCuts notes what the server cut from a record or that it stands
// for a dropped one: "  [cut path 900017 bytes, items 5000]".
func requestCuts(r client.AuditRequest) string {
	var parts []string
	for _, c := range r.Truncated {
		unit := " bytes"
		if c.Field == "items" {
			unit = ""
		}
		parts = append(parts, c.Field+" "+strconv.Itoa(c.Len)+unit)
	}
	for _, it := range r.Items {
		if it.KeyLen > 0 {
			parts = append(parts, "key "+strconv.Itoa(it.KeyLen)+" bytes")
			break
		}
	}
	out := ""
	if len(parts) > 0 {
		out = "  [cut " + strings.Join(parts, ", ") + "]"
	}
	if r.Dropped != nil {
		out += "  [record dropped: " + r.Dropped.Reason + "]"
	}
	return out
}

// requestItems describes what a request asked: "KEY:DECRYPT k1 v2, …",
// or its method and path when it has no items.
func requestItems(r client.AuditRequest) string {
	if len(r.Items) == 0 {
		return r.Method + " " + r.Path
	}
	var parts []string
	for _, it := range r.Items[:min(len(r.Items), maxTextRequestItems)] {
		s := it.Command
		if it.Key != "" {
			s += " " + it.Key
		}
		if it.Version != 0 {
			s += " v" + strconv.FormatUint(uint64(it.Version), 10)
		}
		parts = append(parts, s)
	}
	if n := len(r.Items) - maxTextRequestItems; n > 0 {
		parts = append(parts, "+"+strconv.Itoa(n)+" more")
	}
	return strings.Join(parts, ", ")
}
