package main

import (
	"fmt"
	"io"
)

// runFix is a placeholder until the command lands.
func runFix(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wuoffline fix: not implemented yet")
	return exitError
}
