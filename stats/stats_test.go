package stats

import (
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	s := Snapshot{
		IP:    Proto{Xmit: 3, Recv: 4, Drop: 1, Chkerr: 1},
		Heap:  Heap{Avail: 1600, Used: 128, Max: 256},
		Pools: []Pool{{Name: "PBUF_POOL", Size: 592, Avail: 16, Used: 2, Max: 5, Err: 1}},
	}
	var b strings.Builder
	if err := s.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"chkerr", "IP ", "MEM_HEAP", "MEMP_PBUF_POOL", "9472"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "TCP") {
		t.Errorf("idle protocols are not printed:\n%s", out)
	}
	if got := s.PoolsInUse(); len(got) != 1 || got[0].Name != "PBUF_POOL" {
		t.Errorf("PoolsInUse = %v", got)
	}
	var sum Proto
	sum.Add(&s.IP)
	sum.Add(&s.IP)
	if sum.Xmit != 6 || sum.Chkerr != 2 {
		t.Errorf("Add: %+v", sum)
	}
}
