package client

import (
	"context"
	"net/http"
	"time"

	"github.com/kmsledger/kmsledger/api/wire"
)

// ClusterPeer is one replica of a stream as the cluster sees it.
type ClusterPeer struct {
	Name    string        `json:"name"`
	Leader  bool          `json:"leader"`
	Current bool          `json:"current"`
	Offline bool          `json:"offline"`
	Active  time.Duration `json:"active"` // since last heard from
	Lag     uint64        `json:"lag"`    // operations behind the leader
}

// ClusterStream is the replication of one stream.
type ClusterStream struct {
	Name     string        `json:"name"`
	Leader   string        `json:"leader"`
	Replicas int           `json:"replicas"`
	Messages uint64        `json:"messages"`
	LastSeq  uint64        `json:"last_seq"`
	Peers    []ClusterPeer `json:"peers"`
}

// ClusterDetail is GET /v1/cluster/status: the node asked, and the
// replication of every stream.
type ClusterDetail struct {
	Node      string          `json:"node"`
	Cluster   string          `json:"cluster"`
	Clustered bool            `json:"clustered"`
	Streams   []ClusterStream `json:"streams"`
}

// ClusterDetail returns the replication state of the node's streams
// (root only).
func (c *Client) ClusterDetail(ctx context.Context) (*ClusterDetail, error) {
	var d ClusterDetail
	if err := c.adminJSON(ctx, http.MethodGet, "/v1/cluster/status", "", nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// RemoveNode removes a node that is gone for good from the cluster, by
// its node name (CLUSTER:REMOVENODE; root only).
func (c *Client) RemoveNode(ctx context.Context, name string) error {
	return c.write(ctx, "", wire.CmdClusterRemoveNode, &wire.RemoveClusterNodeRequest{Host: name})
}
