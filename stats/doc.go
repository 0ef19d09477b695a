// Package stats defines wisp's counters, modelled on LWIP_STATS: one Proto record per
// protocol (xmit, recv, fw, drop, chkerr, ...), one Pool record per memp pool, the heap
// record, a Snapshot of all of them and a table printer like lwIP's stats_display().
//
// Layer: base (imports nothing of wisp). Counters are plain integers written only in the
// owner's context (the stack core, or under a pool's lock); read them through a Snapshot,
// which the stack takes under the same protection.
package stats
