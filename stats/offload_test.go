package stats

import (
	"reflect"
	"testing"
)

// TestOffloadAdd: Add sums every field (a field added later and forgotten fails here).
func TestOffloadAdd(t *testing.T) {
	var a, b Offload
	v := reflect.ValueOf(&b).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(i + 1))
	}
	a.Add(&b)
	a.Add(&b)
	av := reflect.ValueOf(a)
	for i := range av.NumField() {
		if got := av.Field(i).Uint(); got != uint64(2*(i+1)) {
			t.Errorf("%s = %d after two Adds of %d", av.Type().Field(i).Name, got, i+1)
		}
	}
}
