package config

import (
	"errors"
	"fmt"
	"time"
)

// Cluster is the `cluster:` section: this server is one node of a
// cluster of kmsledger servers (an embedded NATS cluster).
type Cluster struct {
	Name      string        `yaml:"name"`      // NATS cluster name, the same on every node (default kmsledger)
	Node      string        `yaml:"node"`      // this node's unique name (default: the host name)
	Listen    string        `yaml:"listen"`    // route listener host:port
	Advertise string        `yaml:"advertise"` // host:port the other nodes dial, if not listen
	Routes    []string      `yaml:"routes"`    // nats://host:port of every node
	KeyFile   string        `yaml:"key_file"`  // the cluster key made by `kmsledger cluster init`
	Replicas  int           `yaml:"replicas"`  // 1, 3 or 5 (default 3 with three or more nodes)
	Staleness time.Duration `yaml:"staleness"` // how long a node cut off from the majority serves crypto
}

// NATS is the `nats:` section: keep the ledger on an existing NATS
// cluster instead of an embedded server.
type NATS struct {
	URLs     []string `yaml:"urls"`
	Creds    string   `yaml:"creds"`
	User     string   `yaml:"user"`
	Password string   `yaml:"password"`
	CA       string   `yaml:"ca"`
	Cert     string   `yaml:"cert"`
	Key      string   `yaml:"key"`
	Replicas int      `yaml:"replicas"`
}

// Enabled reports whether the section configures a cluster node.
func (c *Cluster) Enabled() bool { return c.Listen != "" || len(c.Routes) > 0 }

func (c *Config) validateCluster() error {
	cl := &c.Cluster
	if cl.Enabled() && len(c.NATS.URLs) > 0 {
		return errors.New("config: cluster and nats exclude each other: a node either runs the embedded cluster or uses an existing NATS cluster")
	}
	if cl.Enabled() && (cl.Listen == "" || len(cl.Routes) == 0) {
		return errors.New("config: cluster: listen and routes go together")
	}
	for _, r := range []int{cl.Replicas, c.NATS.Replicas} {
		if r != 0 && r != 1 && r != 3 && r != 5 {
			return fmt.Errorf("config: replicas %d: want 1, 3 or 5", r)
		}
	}
	if cl.Staleness < 0 {
		return errors.New("config: cluster.staleness must not be negative")
	}
	if (c.NATS.Cert == "") != (c.NATS.Key == "") {
		return errors.New("config: nats.cert and nats.key go together")
	}
	return nil
}
