package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// progressTo returns a progress callback that prints to w, or nil when w is
// not a terminal (progress is for people; scripts get the report alone). It
// is safe for the several goroutines that work on targets in parallel.
func progressTo(w io.Writer) func(target, msg string) {
	if !isTerminal(w) {
		return nil
	}
	var mu sync.Mutex
	return func(target, msg string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "wuoffline: %s: %s\n", target, msg)
	}
}

// writeJSON prints v as indented JSON for `--json`; on failure it reports
// on stderr under the command's name and returns exitError, else -1.
func writeJSON(stdout, stderr io.Writer, command string, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "wuoffline %s: %v\n", command, err)
		return exitError
	}
	return -1
}
