//go:build windows

package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// termWidth is the number of columns of the console window of f, or 0.
func termWidth(f *os.File) int {
	var info windows.ConsoleScreenBufferInfo
	if err := windows.GetConsoleScreenBufferInfo(windows.Handle(f.Fd()), &info); err != nil {
		return 0
	}
	return int(info.Window.Right-info.Window.Left) + 1
}
