package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	d := defaultConfig()
	var c Config
	flag.DurationVar(&c.Duration, "d", d.Duration, "how long the load runs")
	flag.Uint64Var(&c.Seed, "seed", d.Seed, "seed of the impairment, the stacks and the load")
	flag.IntVar(&c.Conns, "conns", d.Conns, "concurrent churn connections (-1: none)")
	flag.IntVar(&c.Bulk, "bulk", d.Bulk, "long bulk streams (-1: none)")
	flag.IntVar(&c.Stalled, "stalled", d.Stalled, "streams whose reader stalls (-1: none)")
	flag.IntVar(&c.UDP, "udp", d.UDP, "UDP request/response clients (-1: none)")
	flag.Float64Var(&c.Loss, "loss", d.Loss, "frame loss per direction, 0..1 (-1: none)")
	flag.Float64Var(&c.Reorder, "reorder", d.Reorder, "frames reordered per direction, 0..1 (-1: none)")
	flag.DurationVar(&c.Delay, "delay", d.Delay, "one-way delay (-1ns: none)")
	flag.IntVar(&c.Pool, "pool", d.Pool, "PbufPoolSize of each stack (2560-byte receive chunks)")
	flag.IntVar(&c.Mem, "mem", d.Mem, "MemSize of each stack (send heap bytes)")
	flag.BoolVar(&c.Verbose, "v", false, "print every failure and both stacks' counters at the end")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "soak: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	t0 := time.Now()
	err := run(c)
	fmt.Printf("soak: took %v\n", time.Since(t0).Round(time.Millisecond))
	if err != nil {
		os.Exit(1)
	}
}
