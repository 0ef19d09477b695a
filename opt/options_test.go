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
