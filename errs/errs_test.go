package errs

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestErrnoMapping(t *testing.T) {
	wrapped := fmt.Errorf("send: %w", Mem)
	if !errors.Is(wrapped, Mem) || !errors.Is(wrapped, syscall.ENOMEM) {
		t.Fatal("errors.Is through a wrap")
	}
	if errors.Is(Rst, syscall.ENOMEM) || !errors.Is(Rst, syscall.ECONNRESET) {
		t.Fatal("Rst mapping")
	}
	if Mem.Name() != "ERR_MEM" || Mem.Code() != -1 || Mem.Error() != "out of memory" {
		t.Fatal(Mem.Name(), Mem.Code(), Mem.Error())
	}
}
