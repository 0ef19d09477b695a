package main

import (
	"errors"
	"fmt"
)

// wgScenarios are the WireGuard scenarios (wireguard.go): wisp's adapter/wireguard against
// wireguard-go's tun/netstack, both under two wireguard-go devices in this process. wg/* runs
// over conn/bindtest's channel binds (anywhere), wg-udp/* over real UDP on 127.0.0.1 inside a
// namespace (root).
func wgScenarios() []scenario {
	var out []scenario
	for _, b := range []struct {
		bind  wgBind
		id    string
		label string
	}{{wgChannel, "wg", "channel binds"}, {wgUDP, "wg-udp", "UDP on 127.0.0.1 in a namespace"}} {
		cfg := func(sizes) netConfig { return netConfig{MTU: 1420, Conns: 1, WireGuard: b.bind} }
		out = append(out,
			scenario{
				id:    b.id + "/bulk",
				title: fmt.Sprintf("WireGuard (2 wireguard-go devices, %s): TCP bulk, 1 stream, MTU 1420", b.label),
				metrics: []metric{
					mThroughput(ratio(2)),
					mCPU,
					{key: "rss", label: "memory: resident set growth during the transfer", unit: "MiB", goal: ratio(1.0 / 2), prec: 1},
					{key: "rssup", label: "memory: resident set growth, tunnel up, before the transfer", unit: "MiB", prec: 1},
					{key: "heap", label: "memory: Go heap growth (live, after GC) during the transfer", unit: "MiB", prec: 1},
					{key: "heapup", label: "memory: Go heap growth (live), tunnel up, before the transfer", unit: "MiB", prec: 1},
					{key: "inuse", label: "memory: wisp pools + heap in use, both stacks", unit: "MiB", prec: 1},
					{key: "reserved", label: "memory: wisp budget reserved, both stacks", unit: "MiB", prec: 1},
				},
				cfg:  cfg,
				run:  runWGBulk,
				skip: wgSkip(b.bind),
			},
			scenario{
				id:    b.id + "/rr",
				title: fmt.Sprintf("WireGuard (2 wireguard-go devices, %s): TCP 1-byte request/response, MTU 1420", b.label),
				metrics: []metric{
					{key: "p50", label: "round trip median", unit: "µs", goal: ratio(1.0 / 2), prec: 1},
					{key: "p99", label: "round trip p99", unit: "µs", prec: 1},
				},
				cfg: cfg,
				run: func(n network, sz sizes) (map[string]float64, []string, error) {
					v, err := runRR(n, sz.rrRounds)
					return v, nil, err
				},
				skip: wgSkip(b.bind),
			},
		)
	}
	// Stalled readers through the tunnel (channel binds only: the stacks, not the bind, hold
	// the memory): where tun/netstack's users see RAM grow until the process is killed.
	out = append(out, scenario{
		id:      "wg/stalled",
		title:   "WireGuard (2 wireguard-go devices, channel binds): stalled readers (each sender offers its bytes, the reader never reads)",
		metrics: stalledMetrics(1.0 / 2),
		cfg: func(sz sizes) netConfig {
			return netConfig{MTU: 1420, Conns: wgStalledConns(sz), WireGuard: wgChannel}
		},
		run: func(n network, sz sizes) (map[string]float64, []string, error) {
			return runStalled(n, wgStalledConns(sz), sz.stalledBytes, sz.stalledWait, sz.freshReqs, sz.freshWait)
		},
		skip: wgSkip(wgChannel),
		once: true,
	})
	return out
}

// wgStalledConns is the stalled scenario's connection count through the tunnel: at most 200
// (each of netstack's holds its 1 MiB send buffer and up to its receive buffer).
func wgStalledConns(sz sizes) int { return min(sz.stalledConns, 200) }

// runWGBulk is bulk/1x1420 through the tunnel, plus what the whole process holds while the
// transfer runs: the growth of its resident set and of its live Go heap over the moment
// before the network was built (so wisp's preallocated arenas count in the heap row, and in
// the resident set as far as they were touched), and wisp's own accounting.
func runWGBulk(n network, sz sizes) (map[string]float64, []string, error) {
	w, ok := n.(*wgNet)
	if !ok {
		return nil, nil, errors.New("not a WireGuard network")
	}
	const mib = 1 << 20
	var heap uint64
	var res int64
	var mem engineMemory
	heapUp, rssUp := settledHeap(), rss()
	r, err := runBulkProbe(n, 1, sz.bulkWarm, sz.bulkDur, func() {
		res = rss()
		mem = n.memory()
		heap = settledHeap()
	})
	v := r.values()
	delete(v, "allocs") // the tunnel has no packet count
	v["rss"] = float64(res-w.rss0) / mib
	v["heap"] = (float64(heap) - float64(w.heap0)) / mib
	v["rssup"] = float64(rssUp-w.rss0) / mib
	v["heapup"] = (float64(heapUp) - float64(w.heap0)) / mib
	if mem.Reserved > 0 {
		v["inuse"] = float64(mem.InUse) / mib
		v["reserved"] = float64(mem.Reserved) / mib
	}
	return v, stalledNote(r), err
}
