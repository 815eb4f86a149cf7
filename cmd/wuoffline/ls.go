package main

import (
	"fmt"
	"io"
)

// runLs is a placeholder until the command lands.
func runLs(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wuoffline ls: not implemented yet")
	return exitError
}
