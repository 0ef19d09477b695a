package integration

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/wispstack/wisp/endpoint"
	"github.com/wispstack/wisp/internal/tcpapp"
)

// wisp's ping sockets (endpoint.Net Dial "ping4"/"ping6", like wireguard-go's PingConn)
// ping the kernel through TUN: the replies carry the socket's identifier, the sequence
// number and the data, small and fragmented.
func TestPingSocketToKernel(t *testing.T) {
	e := newTCPEnv(t, 26, nil)
	n := endpoint.New(e.s)
	for _, f := range families {
		c, err := n.Dial([]string{"ping4", "ping6"}[f.idx], e.kern[f.idx].String())
		if err != nil {
			t.Fatalf("%s: dial: %v", f.name, err)
		}
		defer c.Close()
		pc := c.(*endpoint.PingConn)
		request, reply := []byte{8, 0}, byte(0) // ICMPv4 echo request, echo reply
		if f.idx == 1 {
			request, reply = []byte{128, 0}, 129 // ICMPv6
		}
		for seq, size := range []int{56, 3000} {
			msg := make([]byte, 8+size)
			copy(msg, request)
			binary.BigEndian.PutUint16(msg[6:], uint16(seq+1))
			tcpapp.FillPattern(msg[8:], uint64(seq), 0)
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("%s: write: %v", f.name, err)
			}
			buf := make([]byte, 8+size+100)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := c.Read(buf)
			if err != nil {
				t.Fatalf("%s: %d-byte echo: read: %v", f.name, size, err)
			}
			got := buf[:k]
			if k != len(msg) || got[0] != reply || binary.BigEndian.Uint16(got[4:]) != pc.Ident() ||
				binary.BigEndian.Uint16(got[6:]) != uint16(seq+1) || !bytes.Equal(got[8:], msg[8:]) {
				t.Fatalf("%s: %d-byte echo: reply % x... (%d bytes), want type %d ident %#x seq %d",
					f.name, size, got[:min(k, 8)], k, reply, pc.Ident(), seq+1)
			}
		}
	}
}
