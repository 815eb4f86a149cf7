package main

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// defaultWidth is the width when the output is not a terminal: the 80
// columns of a WinPE console (80x25).
const defaultWidth = 80

// outputWidth is the width to wrap text for w: the terminal's columns, else
// defaultWidth.
func outputWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if n := termWidth(f); n >= 40 {
			return n
		}
	}
	return defaultWidth
}

// wrapWriter wraps the lines written through it to a width, breaking at
// spaces only (a path or a command stays whole, to be copied) and indenting the continuation
// four columns more than the line's own indent, so that a report reads on an
// 80-column console without the terminal cutting words. Call Flush at the
// end for a last line without a newline.
type wrapWriter struct {
	w     io.Writer
	width int
	buf   []byte
	err   error
}

// newWrapWriter wraps text for w at w's width (outputWidth).
func newWrapWriter(w io.Writer) *wrapWriter {
	return &wrapWriter{w: w, width: outputWidth(w)}
}

// Write implements io.Writer: complete lines are wrapped and written.
func (ww *wrapWriter) Write(p []byte) (int, error) {
	ww.buf = append(ww.buf, p...)
	for {
		i := bytes.IndexByte(ww.buf, '\n')
		if i < 0 {
			break
		}
		ww.emit(string(ww.buf[:i]), true)
		ww.buf = ww.buf[i+1:]
	}
	return len(p), ww.err
}

// Flush writes what is left (a line without its newline, such as a question).
func (ww *wrapWriter) Flush() error {
	if len(ww.buf) > 0 {
		ww.emit(string(ww.buf), false)
		ww.buf = ww.buf[:0]
	}
	return ww.err
}

func (ww *wrapWriter) emit(line string, newline bool) {
	if ww.err != nil {
		return
	}
	var out strings.Builder
	for i, part := range wrapLine(line, ww.width) {
		if i > 0 {
			out.WriteByte('\n')
		}
		out.WriteString(part)
	}
	if newline {
		out.WriteByte('\n')
	}
	_, ww.err = io.WriteString(ww.w, out.String())
}

// wrapLine splits line into pieces of at most width columns (runes): the
// first as it is indented, the rest indented four more. A piece is cut at
// the last space that fits; a longer word is left whole, on a line of its
// own that is wider than width.
func wrapLine(line string, width int) []string {
	indent := len(line) - len(strings.TrimLeft(line, " "))
	cont := strings.Repeat(" ", min(indent+4, width/2))
	var out []string
	prefix := ""
	rest := []rune(line)
	for {
		room := width - len([]rune(prefix))
		if len(rest) <= room {
			return append(out, prefix+string(rest))
		}
		cut := -1
		lead := 0 // the first piece's indent is no break point
		if prefix == "" {
			lead = indent
		}
		for i := room; i > lead; i-- {
			if rest[i] == ' ' {
				cut = i
				break
			}
		}
		if cut < 0 {
			// A word longer than the room (a journal path, a command to
			// copy): never cut inside it; it goes whole on its own line.
			cut = len(rest)
			for i := room; i < len(rest); i++ {
				if rest[i] == ' ' {
					cut = i
					break
				}
			}
			if cut == len(rest) {
				return append(out, prefix+string(rest))
			}
		}
		next := cut + 1 // drop the space
		out = append(out, prefix+strings.TrimRight(string(rest[:cut]), " "))
		rest = rest[next:]
		prefix = cont
	}
}
