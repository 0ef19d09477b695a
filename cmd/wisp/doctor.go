package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wispstack/wisp/apps/doctor"
	"github.com/wispstack/wisp/metrics"
)

// errFindings ends `wisp doctor` with status 1 and nothing more to say: the findings are
// printed.
var errFindings = errors.New("findings")

// fileList is a repeatable --file.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, ",") }
func (l *fileList) Set(s string) error { *l = append(*l, s); return nil }

func cmdDoctor(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", stderr)
	base := fs.String("url", "", "a running `wisp serve|wg|proxy --stats HOST:PORT`: http://HOST:PORT (its /snapshot.json is read\ntwice, --interval apart, so that rates are judged too)")
	var files fileList
	fs.Var(&files, "file", "a snapshot saved by --save (or fetched from /snapshot.json); give it twice, earlier first,\nto judge what happened between the two")
	interval := fs.Duration("interval", time.Second, "with --url: the time between the two snapshots")
	save := fs.String("save", "", "write the (last) snapshot to this file, for a later --file")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "with --url: bound on each request")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *base == "" && len(files) == 0:
		return fmt.Errorf("%w: --url http://HOST:PORT or --file SNAPSHOT is required", errUsage)
	case *base != "" && len(files) > 0:
		return fmt.Errorf("%w: --url and --file exclude each other", errUsage)
	case len(files) > 2:
		return fmt.Errorf("%w: --file at most twice (an earlier and a later snapshot)", errUsage)
	case *interval < 0 || *interval > time.Hour:
		return fmt.Errorf("%w: --interval %v out of range [0, 1h]", errUsage, *interval)
	case *timeout <= 0:
		return fmt.Errorf("%w: --timeout %v must be positive", errUsage, *timeout)
	}
	var prev, cur *doctor.Input
	var from string
	if *base != "" {
		u, err := snapshotURL(*base)
		if err != nil {
			return err
		}
		from = u
		if prev, err = fetchSnapshot(u, *timeout); err != nil {
			return err
		}
		if *interval > 0 {
			time.Sleep(*interval)
			if cur, err = fetchSnapshot(u, *timeout); err != nil {
				return err
			}
		} else {
			prev, cur = nil, prev
		}
	} else {
		from = strings.Join(files, " then ")
		ins := make([]*doctor.Input, len(files))
		for i, f := range files {
			in, err := readSnapshot(f)
			if err != nil {
				return err
			}
			ins[i] = in
		}
		cur = ins[len(ins)-1]
		if len(ins) == 2 {
			prev = ins[0]
			if !cur.At.After(prev.At) {
				return fmt.Errorf("%w: %s was taken at %v, not after %s (%v): give the earlier snapshot first",
					errUsage, files[1], cur.At, files[0], prev.At)
			}
		}
	}
	if *save != "" {
		if err := writeSnapshot(*save, cur); err != nil {
			return err
		}
	}
	findings := doctor.Diagnose(prev, cur)
	if *asJSON {
		if findings == nil {
			findings = []doctor.Finding{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(findings); err != nil {
			return err
		}
	} else {
		if err := writeReport(stdout, from, prev, cur, findings); err != nil {
			return err
		}
		if *save != "" {
			fmt.Fprintf(stdout, "snapshot saved to %s (read it again with: wisp doctor --file %s)\n", *save, *save)
		}
	}
	if unhealthy(findings) {
		return errFindings
	}
	return nil
}

// unhealthy reports whether a finding is a warning or an error (information alone leaves
// the exit status 0).
func unhealthy(fs []doctor.Finding) bool {
	for _, f := range fs {
		if f.Severity != doctor.Info {
			return true
		}
	}
	return false
}

// writeReport prints what was read and the findings in plain words.
func writeReport(w io.Writer, from string, prev, cur *doctor.Input, fs []doctor.Finding) error {
	span := "counters since the stack started"
	if prev != nil {
		span = "what happened in " + cur.At.Sub(prev.At).Round(time.Millisecond).String()
	}
	tcp := 0
	for _, c := range cur.Conns {
		if c.Proto == "tcp" {
			tcp++
		}
	}
	if _, err := fmt.Fprintf(w, "wisp doctor: %s, taken %s; %d core(s), %d connection(s) (%d TCP); %s\n\n",
		from, cur.At.UTC().Format(time.RFC3339), cur.Cores, len(cur.Conns), tcp, span); err != nil {
		return err
	}
	if len(fs) == 0 {
		_, err := io.WriteString(w, metrics.Healthy)
		return err
	}
	for _, f := range fs {
		if _, err := fmt.Fprintf(w, "%s\n\n", f); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d finding(s).\n", len(fs))
	return err
}

// snapshotURL turns --url (http://HOST:PORT, with or without a path) into the URL of the
// snapshot.
func snapshotURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: --url %q is not http://HOST:PORT", errUsage, base)
	}
	if !strings.HasSuffix(u.Path, "/snapshot.json") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/snapshot.json"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// fetchSnapshot reads one snapshot from a stats server. Failing to reach it, or an answer
// that is not a snapshot, is bad input (status 2).
func fetchSnapshot(u string, timeout time.Duration) (*doctor.Input, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: %s", errUsage, u, resp.Status)
	}
	in, err := decodeSnapshot(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, u, err)
	}
	return in, nil
}

// readSnapshot reads a snapshot file.
func readSnapshot(file string) (*doctor.Input, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	defer f.Close()
	in, err := decodeSnapshot(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUsage, file, err)
	}
	return in, nil
}

// decodeSnapshot decodes one doctor.Input and checks that it is one: a time and pools.
func decodeSnapshot(r io.Reader) (*doctor.Input, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var in doctor.Input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("not a wisp snapshot: %v", err)
	}
	if in.At.IsZero() || len(in.Stats.Pools) == 0 {
		return nil, errors.New("not a wisp snapshot: no time or no pools")
	}
	return &in, nil
}

// writeSnapshot writes in as indented JSON (what /snapshot.json serves).
func writeSnapshot(file string, in *doctor.Input) error {
	b, err := json.MarshalIndent(in, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}
