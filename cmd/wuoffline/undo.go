package main

import (
	"fmt"
	"io"
)

// runUndo is a placeholder until the command lands.
func runUndo(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "wuoffline undo: not implemented yet")
	return exitError
}
