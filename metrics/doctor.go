package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/stack"
)

// sampler keeps the last sample /diagnose took, so that the next request compares against
// it at once instead of waiting stack.DiagnoseInterval (the page asks every second).
type sampler struct {
	s    *stack.Stack
	mu   sync.Mutex
	last *doctor.Input
}

// Samples further apart than this are not compared: the rates would be averages over too
// long a time. Closer than minGap, the rates are noise.
const (
	maxGap = 5 * time.Minute
	minGap = 500 * time.Millisecond
)

// diagnose returns the findings: against the last sample when it is between minGap and
// maxGap old, otherwise by s.Diagnose (two samples a second apart).
func (p *sampler) diagnose() []doctor.Finding {
	cur := p.s.DoctorInput()
	p.mu.Lock()
	last := p.last
	if last == nil || cur.At.Sub(last.At) >= minGap {
		p.last = &cur
	}
	p.mu.Unlock()
	if last != nil {
		if gap := cur.At.Sub(last.At); gap >= minGap && gap <= maxGap {
			return doctor.Diagnose(last, &cur)
		}
	}
	return p.s.Diagnose()
}

// registerDoctor adds /snapshot.json and /diagnose to mux.
func registerDoctor(mux *http.ServeMux, s *stack.Stack) {
	p := &sampler{s: s}
	mux.HandleFunc("GET /snapshot.json", func(w http.ResponseWriter, r *http.Request) {
		in := s.DoctorInput()
		writeJSON(w, &in)
	})
	mux.HandleFunc("GET /diagnose", func(w http.ResponseWriter, r *http.Request) {
		fs := p.diagnose()
		if r.URL.Query().Get("json") != "" {
			if fs == nil {
				fs = []doctor.Finding{}
			}
			writeJSON(w, fs)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		WriteFindings(w, fs)
	})
}

// Healthy is what WriteFindings prints for a stack without findings.
const Healthy = "no findings: no pool ran out, no packet or write was refused for memory, no timer ran late,\n" +
	"and nothing else the doctor checks looks wrong.\n"

// WriteFindings prints findings in plain words, a blank line between them, or Healthy.
func WriteFindings(w io.Writer, fs []doctor.Finding) error {
	if len(fs) == 0 {
		_, err := io.WriteString(w, Healthy)
		return err
	}
	for i, f := range fs {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s\n", f); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	// An error here is the client's going away; the headers are out.
	_ = enc.Encode(v)
}
