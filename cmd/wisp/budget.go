package main

import (
	"fmt"
	"io"

	"github.com/wispstack/wisp/stack"
)

func cmdBudget(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("budget", stderr)
	name := presetFlag(fs, "tunnel")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := preset(*name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "memory budget of preset %q (every byte is reserved when the stack starts; nothing grows)\n\n", *name)
	return stack.BudgetFor(o).WriteTable(stdout)
}
