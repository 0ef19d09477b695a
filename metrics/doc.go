// Package metrics serves a stack's counters over HTTP: Prometheus text format at /metrics
// (through prometheus/client_golang: a Collector that reads Stack.Stats, Stack.Budget and
// the connection list at every scrape), a small self-refreshing HTML page at /, the doctor's
// input at /snapshot.json and its findings at /diagnose.
//
// Layer: beside forwarder, above endpoint. It imports stack, stats, apps/doctor and the
// engine's value types, and it is the only package of wisp that may import
// github.com/prometheus/*.
//
// Concurrency: the handler is safe for concurrent use; each request takes the stack's core
// locks only inside the stack's own accessors (Stats, Budget, TCPConns), never across a write
// to the client.
package metrics
