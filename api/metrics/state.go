package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reports a Snapshot as constant metrics on each scrape.
type stateCollector struct {
	snapshot func() Snapshot
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

var (
	descObjects       = desc("objects", "Objects in the current state, by kind (enclaves, keys, key_versions, identities, policies).", "kind")
	descLedgerHead    = desc("ledger_head_sequence", "Sequence of the last LEDGER event.")
	descProjectionSeq = desc("projection_sequence", "Sequence of the last LEDGER event the projection applied.")
	descProjectionLag = desc("projection_lag_events", "LEDGER events not yet applied by the projection.")
	descAuditRecords  = desc("audit_records_total", "Request audit records, by outcome: stored, dropped (stored as a marker), lost (not stored), busy (request refused: no slot).", "outcome")
	descAuditBacklog  = desc("audit_backlog_records", "Audit records accepted and not yet stored.")
	descHSMUp         = desc("hsm_up", "Whether the HSM's last health check passed (1) or not (0).", "hsm", "kind")
	descHSMCalls      = desc("hsm_calls_total", "Calls of an HSM since start, by operation and result.", "hsm", "kind", "op", "result")
	descPeerUp        = desc("cluster_replica_up", "Whether a replica of a stream is online (1) or not (0), as this node sees it; the leader has leader=\"true\".", "stream", "node", "leader")
	descPeerCurrent   = desc("cluster_replica_current", "Whether a replica of a stream is caught up with its leader (1) or not (0).", "stream", "node")
	descKeyCache      = desc("key_cache_lookups_total", "Lookups of unsealed key versions in the key cache, by result: hit, or miss (unsealed from the sealed material).", "result")
	descKeyEvictions  = desc("key_cache_evictions_total", "Unsealed key versions evicted from the key cache to make room for others.")
	descKeyPrimes     = desc("key_cache_primes_total", "Key versions put in the key cache without a use: as their material is stored, or by the warm-up at start.")
	descKeyCacheSize  = desc("key_cache_versions", "Unsealed key versions in the key cache.")
	descKeyCacheCap   = desc("key_cache_capacity_versions", "Most unsealed key versions the key cache holds (cache.keys, --key-cache).")
	descPeerLag       = desc("cluster_replica_lag_operations", "Operations a replica of a stream is behind its leader.", "stream", "node")
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descObjects, descLedgerHead, descProjectionSeq, descProjectionLag,
		descAuditRecords, descAuditBacklog, descHSMUp, descHSMCalls, descPeerUp, descPeerCurrent, descPeerLag,
		descKeyCache, descKeyEvictions, descKeyPrimes, descKeyCacheSize, descKeyCacheCap} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descObjects, float64(s.Enclaves), "enclaves")
	gauge(descObjects, float64(s.Keys), "keys")
	gauge(descObjects, float64(s.KeyVersions), "key_versions")
	gauge(descObjects, float64(s.Identities), "identities")
	gauge(descObjects, float64(s.Policies), "policies")
	gauge(descLedgerHead, float64(s.LedgerHead))
	gauge(descProjectionSeq, float64(s.ProjectionSeq))
	gauge(descProjectionLag, float64(s.LedgerHead-min(s.ProjectionSeq, s.LedgerHead)))
	counter(descKeyCache, s.KeyCache.Hits, "hit")
	counter(descKeyCache, s.KeyCache.Misses, "miss")
	counter(descKeyEvictions, s.KeyCache.Evictions)
	counter(descKeyPrimes, s.KeyCache.Primes)
	gauge(descKeyCacheSize, float64(s.KeyCache.Size))
	gauge(descKeyCacheCap, float64(s.KeyCache.Capacity))
	if a := s.Audit; a != nil {
		counter(descAuditRecords, a.Stored, "stored")
		counter(descAuditRecords, a.Dropped, "dropped")
		counter(descAuditRecords, a.Lost, "lost")
		counter(descAuditRecords, a.Busy, "busy")
		gauge(descAuditBacklog, float64(a.Backlog))
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, r := range s.Replicas {
		gauge(descPeerUp, b(!r.Offline), r.Stream, r.Node, fmt.Sprint(r.Leader))
		gauge(descPeerCurrent, b(r.Current), r.Stream, r.Node)
		gauge(descPeerLag, float64(r.Lag), r.Stream, r.Node)
	}
	for _, h := range s.HSMs {
		up := 0.0
		if h.Up {
			up = 1
		}
		gauge(descHSMUp, up, h.Name, h.Kind)
		for _, c := range h.Calls {
			counter(descHSMCalls, c.OK, h.Name, h.Kind, c.Op, "ok")
			counter(descHSMCalls, c.Failed, h.Name, h.Kind, c.Op, "error")
		}
	}
}
