package main

import (
	"fmt"
	"io"
)

// runReg is a placeholder until the command lands.
func runReg(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wuoffline reg: not implemented yet")
	return exitError
}
