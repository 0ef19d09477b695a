package opt

import (
	"strings"
	"testing"
)

func TestPresetsValidate(t *testing.T) {
	for _, name := range PresetNames() {
		o, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, err := Preset("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown preset: got %v", err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		field string
		mod   func(*Options)
	}{
		{"MemSize", func(o *Options) { o.MemSize = 10 }},
		{"PbufPoolBufSize", func(o *Options) { o.PbufPoolBufSize = 64 }},
		{"PbufPoolSize", func(o *Options) { o.PbufPoolSize = -1 }},
		{"TCPWnd", func(o *Options) { o.TCPWnd = o.TCPMSS }},
		{"TCPSndQueueLen", func(o *Options) { o.TCPSndQueueLen = 1 }},
		{"TCPMaxSndBuf", func(o *Options) { o.TCPMaxSndBuf = o.TCPSndBuf - 1 }},
		{"MempNumTCPSeg", func(o *Options) { o.MempNumTCPSeg = 2 }},
		{"IPDefaultTTL", func(o *Options) { o.IPDefaultTTL = 0 }},
		{"IPReassMaxPbufs", func(o *Options) { o.IPReassMaxPbufs = 1 }},
		{"ARPTableSize", func(o *Options) { o.ARPTableSize = 0 }},
		{"TCPDeferTimeout", func(o *Options) { o.TCPDeferTimeout = 0 }},
	}
	for _, c := range cases {
		o := Embedded()
		c.mod(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: got %v, want an error naming the field", c.field, err)
		}
	}
}

// Client's receive window must fit in its POOL memory with the quarter a moving
// connection may not take (transport/tcp's reserve), or a lone stream never reaches it;
// and its send buffer in its heap.
func TestClientPresetFits(t *testing.T) {
	o, err := Preset("client")
	if err != nil {
		t.Fatal(err)
	}
	if o != Client() {
		t.Fatal(`Preset("client") is not Client()`)
	}
	segs := o.PbufPoolSize * 3 / 4 // one 1460-byte segment per chunk
	if o.PbufPoolBufSize < 1500+16 || o.TCPMaxWnd > segs*1460 {
		t.Errorf("TCPMaxWnd %d does not fit %d POOL chunks of %d bytes", o.TCPMaxWnd, o.PbufPoolSize, o.PbufPoolBufSize)
	}
	if o.TCPMaxSndBuf > o.MemSize/2 {
		t.Errorf("TCPMaxSndBuf %d is more than half of MemSize %d", o.TCPMaxSndBuf, o.MemSize)
	}
	if tu := Tunnel(); o.MemSize >= tu.MemSize || o.PbufPoolSize >= tu.PbufPoolSize || o.MempNumTCPPCB >= tu.MempNumTCPPCB {
		t.Error("Client is not smaller than Tunnel")
	}
}
