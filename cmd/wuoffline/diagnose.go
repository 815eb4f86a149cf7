package main

import (
	"fmt"
	"io"
)

// runDiagnose is a placeholder until the command lands.
func runDiagnose(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wuoffline diagnose: not implemented yet")
	return exitError
}
