package clientcmd

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kmsledger/kmsledger/api/client"
)

// lsNodesAction is `kmsledger ls` without a noun (as minkms's `ls`): the
// nodes of the cluster, their state and how far behind the leader they
// are.
func lsNodesAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		d, err := kc.ClusterDetail(ctx)
		if err != nil {
			return err
		}
		printNodes(c.App.Writer, d)
		return nil
	})
}

// statClusterAction is `kmsledger stat` without a noun (as minkms's
// `stat`): every stream, its leader and each replica's state and lag.
func statClusterAction(c *cli.Context) error {
	return runClient(c, 0, 0, func(ctx context.Context, kc *client.Client, _ []string) error {
		d, err := kc.ClusterDetail(ctx)
		if err != nil {
			return err
		}
		w := c.App.Writer
		if d.Clustered {
			fmt.Fprintf(w, "cluster %s, asked node %s\n", d.Cluster, d.Node)
		} else {
			fmt.Fprintln(w, "single node")
		}
		for _, s := range d.Streams {
			leader := s.Leader
			if leader == "" {
				leader = "(none: no majority)"
			}
			fmt.Fprintf(w, "%-8s replicas %d  leader %-12s messages %d  last %d\n", s.Name, s.Replicas, leader, s.Messages, s.LastSeq)
			for _, p := range s.Peers {
				fmt.Fprintf(w, "  %-12s %-8s lag %-6d seen %s ago\n", p.Name, peerState(p), p.Lag, p.Active.Round(time.Millisecond))
			}
		}
		return nil
	})
}

// printNodes prints one line per node: its name, state, whether it leads
// LEDGER, and its lag behind LEDGER's leader.
func printNodes(w io.Writer, d *client.ClusterDetail) {
	type row struct {
		state, role string
		lag         uint64
	}
	rows := map[string]*row{}
	for i, s := range d.Streams {
		for _, p := range s.Peers {
			r := rows[p.Name]
			if r == nil {
				r = &row{state: peerState(p), role: "follower"}
				rows[p.Name] = r
			}
			if p.Offline {
				r.state = "offline"
			}
			if i == 0 {
				r.lag = p.Lag
				if p.Name == s.Leader {
					r.role = "leader"
				}
			}
		}
	}
	var names []string
	for n := range rows {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(w, "%-16s %-8s %-8s %s\n", "NODE", "STATE", "ROLE", "LAG")
	for _, n := range names {
		r := rows[n]
		me := ""
		if n == d.Node {
			me = " (this node)"
		}
		fmt.Fprintf(w, "%-16s %-8s %-8s %d%s\n", n, r.state, r.role, r.lag, me)
	}
}

func peerState(p client.ClusterPeer) string {
	switch {
	case p.Offline:
		return "offline"
	case p.Current:
		return "current"
	}
	return "behind"
}
