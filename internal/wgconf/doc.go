// Package wgconf reads WireGuard configuration files in wg-quick's format (wg-quick(8),
// wg(8)) and turns them into wireguard-go's UAPI text (https://www.wireguard.com/xplatform/),
// which device.IpcSet takes:
//
//	[Interface]
//	PrivateKey = <base64>
//	Address = 198.18.0.2/24, fd42:5eed::2/64
//	DNS = 198.18.0.1
//	MTU = 1420
//	ListenPort = 51820
//
//	[Peer]
//	PublicKey = <base64>
//	PresharedKey = <base64>
//	Endpoint = vpn.example.org:51820
//	AllowedIPs = 198.18.0.0/24, fd42:5eed::/64
//	PersistentKeepalive = 25
//
// Parse checks everything a file can get wrong — keys (base64 of exactly 32 bytes),
// addresses and prefixes, ports, numbers, unknown keys and sections — and names the line in
// its error. It does no I/O besides reading: an Endpoint given by host name is resolved by
// Config.ResolveEndpoints, with a lookup the caller supplies (the operating system's
// resolver: the endpoint lives on the underlay, outside the tunnel).
//
// Layer: internal (standard library only). Concurrency: a Config is plain data; Parse and
// the methods may run concurrently on different Configs.
package wgconf
