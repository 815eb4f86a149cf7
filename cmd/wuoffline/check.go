package main

import (
	"fmt"
	"io"
)

// runCheck is a placeholder until the command lands.
func runCheck(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wuoffline check: not implemented yet")
	return exitError
}
