package main

import (
	"strings"
	"testing"
	"time"
)

// A short soak: every kind of load at once over the impaired link, everything checked and
// back to idle at the end. The command runs the same function for as long as it is told.
func TestSoak(t *testing.T) {
	d := 10 * time.Second
	if testing.Short() {
		d = 5 * time.Second
	}
	var out strings.Builder
	err := run(Config{Duration: d, Seed: 11, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
}
