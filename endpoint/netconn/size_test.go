package netconn

import (
	"testing"
	"unsafe"
)

// An idle TCPConn stays small: the struct plus two one-slot channels, no preallocated
// mailbox (target < 1 KB of Go heap).
func TestTCPConnSize(t *testing.T) {
	const chanSize = 96 // runtime.hchan
	size := int(unsafe.Sizeof(TCPConn{})) + 2*chanSize
	t.Logf("TCPConn %d bytes, UDPConn %d, TCPListener %d", unsafe.Sizeof(TCPConn{}), unsafe.Sizeof(UDPConn{}), unsafe.Sizeof(TCPListener{}))
	if size > 1024 {
		t.Errorf("an idle TCPConn takes %d bytes, want < 1024", size)
	}
}
