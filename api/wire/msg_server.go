package wire

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrResponse is the body of an error response (see client.Err*), as
// protobuf or as JSON {"message":"..."}.
type ErrResponse struct {
	Message string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *ErrResponse) MarshalProto() []byte { return appendString(nil, 1, m.Message) }

// UnmarshalProto resets m and decodes b into it.
func (m *ErrResponse) UnmarshalProto(b []byte) error {
	*m = ErrResponse{}
	return decodeName(b, &m.Message)
}

// errResponseJSON is the protojson form of ErrResponse.
type errResponseJSON struct {
	Message string `json:"message,omitempty"`
}

// MarshalJSON returns {"message":"..."}, or {} for an empty message, as
// protojson does.
func (m ErrResponse) MarshalJSON() ([]byte, error) {
	return json.Marshal(errResponseJSON(m))
}

// UnmarshalJSON decodes {"message":"..."}. Unknown fields are ignored.
func (m *ErrResponse) UnmarshalJSON(b []byte) error {
	var v errResponseJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = ErrResponse(v)
	return nil
}

// VersionResponse answers GET /version.
type VersionResponse struct {
	Version    string // 1, such as "2023-12-01T16-06-52Z"
	Commit     string // 2
	APIVersion string // 3, such as "v1"
	Host       string // 4
	FIPS140    bool   // 5
}

// MarshalProto returns the proto3 encoding of m.
func (m *VersionResponse) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Version)
	b = appendString(b, 2, m.Commit)
	b = appendString(b, 3, m.APIVersion)
	b = appendString(b, 4, m.Host)
	return appendBool(b, 5, m.FIPS140)
}

// UnmarshalProto resets m and decodes b into it.
func (m *VersionResponse) UnmarshalProto(b []byte) error {
	*m = VersionResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Version, err = f.string(m.Version)
		case 2:
			m.Commit, err = f.string(m.Commit)
		case 3:
			m.APIVersion, err = f.string(m.APIVersion)
		case 4:
			m.Host, err = f.string(m.Host)
		case 5:
			m.FIPS140 = f.bool(m.FIPS140)
		}
		return err
	})
}

// versionResponseJSON is the JSON form of VersionResponse with proto field
// names; default values are omitted as protojson omits them.
type versionResponseJSON struct {
	Version    string `json:"version,omitempty"`
	Commit     string `json:"commit,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
	Host       string `json:"host,omitempty"`
	FIPS140    bool   `json:"fips140,omitempty"`
}

// MarshalJSON returns the JSON form of m with snake_case field names
// (version, commit, api_version, host, fips140).
func (m VersionResponse) MarshalJSON() ([]byte, error) {
	return json.Marshal(versionResponseJSON(m))
}

// UnmarshalJSON decodes the JSON form of m. Like protojson it accepts both
// "api_version" and the lowerCamelCase "apiVersion"; unknown fields are
// ignored.
func (m *VersionResponse) UnmarshalJSON(b []byte) error {
	var v struct {
		versionResponseJSON
		APIVersionCamel *string `json:"apiVersion"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = VersionResponse(v.versionResponseJSON)
	if v.APIVersionCamel != nil {
		m.APIVersion = *v.APIVersionCamel
	}
	return nil
}

// ServerStatusResponse describes one cluster node.
type ServerStatusResponse struct {
	Version           string            // 1
	APIVersion        string            // 2
	Host              string            // 3
	UpTime            time.Duration     // 4
	Role              string            // 5, Leader, Follower or Candidate
	Commit            uint64            // 6
	Nodes             map[uint32]string // 7
	ID                uint32            // 8
	LeaderID          int64             // 9, sint64; < 0 means none
	LastHeartbeat     time.Duration     // 10
	HeartbeatInterval time.Duration     // 11
	ElectionTimeout   time.Duration     // 12
	OS                string            // 13
	Arch              string            // 14
	CPUs              uint32            // 15
	UsableCPUs        uint32            // 16
	HeapMemInUse      uint64            // 17
	StackMemInUse     uint64            // 18
}

// MarshalProto returns the proto3 encoding of m.
func (m *ServerStatusResponse) MarshalProto() []byte {
	var b []byte
	b = appendString(b, 1, m.Version)
	b = appendString(b, 2, m.APIVersion)
	b = appendString(b, 3, m.Host)
	b = appendDuration(b, 4, m.UpTime)
	b = appendString(b, 5, m.Role)
	b = appendUint64(b, 6, m.Commit)
	b = appendUint32StringMap(b, 7, m.Nodes)
	b = appendUint32(b, 8, m.ID)
	b = appendSint64(b, 9, m.LeaderID)
	b = appendDuration(b, 10, m.LastHeartbeat)
	b = appendDuration(b, 11, m.HeartbeatInterval)
	b = appendDuration(b, 12, m.ElectionTimeout)
	b = appendString(b, 13, m.OS)
	b = appendString(b, 14, m.Arch)
	b = appendUint32(b, 15, m.CPUs)
	b = appendUint32(b, 16, m.UsableCPUs)
	b = appendUint64(b, 17, m.HeapMemInUse)
	return appendUint64(b, 18, m.StackMemInUse)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ServerStatusResponse) UnmarshalProto(b []byte) error {
	*m = ServerStatusResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Version, err = f.string(m.Version)
		case 2:
			m.APIVersion, err = f.string(m.APIVersion)
		case 3:
			m.Host, err = f.string(m.Host)
		case 4:
			m.UpTime, err = f.duration(m.UpTime)
		case 5:
			m.Role, err = f.string(m.Role)
		case 6:
			m.Commit = f.uint64(m.Commit)
		case 7:
			err = f.uint32StringMapEntry(&m.Nodes)
		case 8:
			m.ID = f.uint32(m.ID)
		case 9:
			m.LeaderID = f.sint64(m.LeaderID)
		case 10:
			m.LastHeartbeat, err = f.duration(m.LastHeartbeat)
		case 11:
			m.HeartbeatInterval, err = f.duration(m.HeartbeatInterval)
		case 12:
			m.ElectionTimeout, err = f.duration(m.ElectionTimeout)
		case 13:
			m.OS, err = f.string(m.OS)
		case 14:
			m.Arch, err = f.string(m.Arch)
		case 15:
			m.CPUs = f.uint32(m.CPUs)
		case 16:
			m.UsableCPUs = f.uint32(m.UsableCPUs)
		case 17:
			m.HeapMemInUse = f.uint64(m.HeapMemInUse)
		case 18:
			m.StackMemInUse = f.uint64(m.StackMemInUse)
		}
		return err
	})
}

// ClusterStatusRequest is the message of CLUSTER:STATUS. It has no fields.
type ClusterStatusRequest struct{}

// MarshalProto returns the proto3 encoding of m: no bytes.
func (m *ClusterStatusRequest) MarshalProto() []byte { return nil }

// UnmarshalProto checks that b is a well-formed message; all its fields are
// unknown.
func (m *ClusterStatusRequest) UnmarshalProto(b []byte) error {
	return decode(b, func(field) error { return nil })
}

// ClusterStatusResponse answers CLUSTER:STATUS.
type ClusterStatusResponse struct {
	NodesUp   map[uint32]ServerStatusResponse // 1
	NodesDown map[uint32]string               // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *ClusterStatusResponse) MarshalProto() []byte {
	var b []byte
	for _, id := range sortedKeys(m.NodesUp) {
		node := m.NodesUp[id]
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.VarintType)
		e = protowire.AppendVarint(e, uint64(id))
		e = appendMessage(e, 2, node.MarshalProto())
		b = appendMessage(b, 1, e)
	}
	return appendUint32StringMap(b, 2, m.NodesDown)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ClusterStatusResponse) UnmarshalProto(b []byte) error {
	*m = ClusterStatusResponse{}
	return decode(b, func(f field) error {
		switch f.num {
		case 1:
			var id uint32
			var node ServerStatusResponse
			ok, err := f.mapEntry(
				func(f field) error { id = f.uint32(id); return nil },
				func(f field) error {
					if b, ok := f.message(); ok {
						return node.UnmarshalProto(b)
					}
					return nil
				},
			)
			if ok {
				if m.NodesUp == nil {
					m.NodesUp = make(map[uint32]ServerStatusResponse)
				}
				m.NodesUp[id] = node
			}
			return err
		case 2:
			return f.uint32StringMapEntry(&m.NodesDown)
		}
		return nil
	})
}

// AddClusterNodeRequest is the message of CLUSTER:ADDNODE.
type AddClusterNodeRequest struct {
	Host string // 1
}

// MarshalProto returns the proto3 encoding of m.
func (m *AddClusterNodeRequest) MarshalProto() []byte { return appendString(nil, 1, m.Host) }

// UnmarshalProto resets m and decodes b into it.
func (m *AddClusterNodeRequest) UnmarshalProto(b []byte) error {
	*m = AddClusterNodeRequest{}
	return decodeName(b, &m.Host)
}

// RemoveClusterNodeRequest is the message of CLUSTER:REMOVENODE.
type RemoveClusterNodeRequest struct {
	Host                string // 1
	DeleteClusterOnHost bool   // 2
}

// MarshalProto returns the proto3 encoding of m.
func (m *RemoveClusterNodeRequest) MarshalProto() []byte {
	return appendBool(appendString(nil, 1, m.Host), 2, m.DeleteClusterOnHost)
}

// UnmarshalProto resets m and decodes b into it.
func (m *RemoveClusterNodeRequest) UnmarshalProto(b []byte) error {
	*m = RemoveClusterNodeRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Host, err = f.string(m.Host)
		case 2:
			m.DeleteClusterOnHost = f.bool(m.DeleteClusterOnHost)
		}
		return err
	})
}

// EditClusterRequest is the message of CLUSTER:EDIT.
type EditClusterRequest struct {
	Host      string   // 1
	RemoveIDs []uint32 // 2, packed
}

// MarshalProto returns the proto3 encoding of m.
func (m *EditClusterRequest) MarshalProto() []byte {
	return appendPackedUint32(appendString(nil, 1, m.Host), 2, m.RemoveIDs)
}

// UnmarshalProto resets m and decodes b into it. RemoveIDs is accepted
// packed and unpacked.
func (m *EditClusterRequest) UnmarshalProto(b []byte) error {
	*m = EditClusterRequest{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Host, err = f.string(m.Host)
		case 2:
			m.RemoveIDs, err = f.packedUint32(m.RemoveIDs)
		}
		return err
	})
}

// ProfileStatusResponse answers GET /v1/debug/pprof.
type ProfileStatusResponse struct {
	Started       time.Time // 1
	CPU           bool      // 2
	Heap          bool      // 3
	Goroutine     bool      // 4
	Thread        bool      // 5
	BlockRate     uint32    // 6
	MutexFraction uint32    // 7
}

// MarshalProto returns the proto3 encoding of m.
func (m *ProfileStatusResponse) MarshalProto() []byte {
	var b []byte
	b = appendTime(b, 1, m.Started)
	b = appendBool(b, 2, m.CPU)
	b = appendBool(b, 3, m.Heap)
	b = appendBool(b, 4, m.Goroutine)
	b = appendBool(b, 5, m.Thread)
	b = appendUint32(b, 6, m.BlockRate)
	return appendUint32(b, 7, m.MutexFraction)
}

// UnmarshalProto resets m and decodes b into it.
func (m *ProfileStatusResponse) UnmarshalProto(b []byte) error {
	*m = ProfileStatusResponse{}
	return decode(b, func(f field) (err error) {
		switch f.num {
		case 1:
			m.Started, err = f.time(m.Started)
		case 2:
			m.CPU = f.bool(m.CPU)
		case 3:
			m.Heap = f.bool(m.Heap)
		case 4:
			m.Goroutine = f.bool(m.Goroutine)
		case 5:
			m.Thread = f.bool(m.Thread)
		case 6:
			m.BlockRate = f.uint32(m.BlockRate)
		case 7:
			m.MutexFraction = f.uint32(m.MutexFraction)
		}
		return err
	})
}
