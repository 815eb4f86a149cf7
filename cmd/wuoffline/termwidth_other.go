//go:build !unix && !windows

package main

import "os"

// termWidth is 0: no terminal size on this system.
func termWidth(*os.File) int { return 0 }
