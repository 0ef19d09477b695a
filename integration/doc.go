// Package integration runs wisp against real peers: the Linux kernel through TUN devices
// and, over AF_XDP, through veth pairs (xdp_test.go), in network namespaces that each test
// creates and always removes; wireguard-go and gVisor stacks on those links. Tests need root and the
// tools the README's test command installs; they skip without root and fail in CI (CI=true)
// when a tool is missing, so a green CI run means they really ran.
//
// Every peer lives inside the test's namespaces, which have no default route; addresses come
// only from 198.18.0.0/15 and fd42:5eed::/48.
package integration
