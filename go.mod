module github.com/wispstack/wisp

go 1.25.0

require (
	github.com/gopacket/gopacket v1.7.7
	golang.org/x/sys v0.45.0
	gvisor.dev/gvisor v0.0.0-20250503011706-39ed1f5ac29c
)

require (
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/net v0.55.0 // indirect
	golang.org/x/time v0.7.0 // indirect
)
