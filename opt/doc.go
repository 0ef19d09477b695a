// Package opt holds wisp's options: the one struct that sizes every pool, heap and
// protocol limit of a stack, like lwIP's opt.h / lwipopts.h.
//
// Presets: Embedded (lwIP's defaults, a microcontroller), Client (a WireGuard client or a
// TUN proxy on a host: tens of connections, ~6 MiB), Tunnel (servers and relays: thousands
// of connections, ~72 MiB). `wisp budget --preset NAME` prints what each reserves.
//
// Layer: base (imports nothing of wisp). Options are plain values: copy them, change
// fields, call Validate. Safe for concurrent use once no longer modified.
package opt
