package main

import (
	"fmt"
	"io"
)

// runMv is a placeholder until the command lands.
func runMv(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wuoffline mv: not implemented yet")
	return exitError
}
