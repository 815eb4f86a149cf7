package testutil

import (
	"errors"
	"fmt"
	"io"
)

// ErrInjected is returned by a FaultWriter in FaultError mode.
var ErrInjected = errors.New("testutil: injected write fault")

// FaultMode is how a FaultWriter misbehaves once its limit is reached.
type FaultMode int

const (
	// FaultError: every write after the limit fails with ErrInjected and
	// writes nothing (a dead disk or a pulled cable the program notices).
	FaultError FaultMode = iota
	// FaultPowerCut: every write after the limit reports success and writes
	// nothing, and Sync reports success (the machine lost power: nothing
	// after the cut reached the disk, and nobody noticed).
	FaultPowerCut
	// FaultTorn: the first write after the limit writes only the first half
	// of its bytes (rounded down), then as FaultPowerCut.
	FaultTorn
)

// String names the mode, for subtest names.
func (m FaultMode) String() string {
	switch m {
	case FaultError:
		return "error"
	case FaultPowerCut:
		return "powercut"
	case FaultTorn:
		return "torn"
	}
	return fmt.Sprintf("FaultMode(%d)", int(m))
}

// FaultWriter passes the first Limit writes to W and then misbehaves as
// Mode says. A negative Limit never misbehaves: use it to count the writes
// of a full run (Writes), then run again with Limit = 0..Writes()-1, which
// is how the crash tests stop a fix after every possible number of writes.
type FaultWriter struct {
	W     io.WriterAt
	Limit int
	Mode  FaultMode
	n     int // writes passed to W in full
	cut   bool
}

// NewFaultWriter returns a FaultWriter over w.
func NewFaultWriter(w io.WriterAt, limit int, mode FaultMode) *FaultWriter {
	return &FaultWriter{W: w, Limit: limit, Mode: mode}
}

// WriteAt implements io.WriterAt.
func (f *FaultWriter) WriteAt(p []byte, off int64) (int, error) {
	if f.Limit < 0 || (!f.cut && f.n < f.Limit) {
		f.n++
		return f.W.WriteAt(p, off)
	}
	switch f.Mode {
	case FaultError:
		f.cut = true
		return 0, fmt.Errorf("write %d at %#x: %w", f.n+1, off, ErrInjected)
	case FaultTorn:
		if !f.cut {
			f.cut = true
			if _, err := f.W.WriteAt(p[:len(p)/2], off); err != nil {
				return 0, err
			}
		}
	}
	f.cut = true
	return len(p), nil
}

// Writes returns how many writes reached W in full.
func (f *FaultWriter) Writes() int { return f.n }

// Cut reports whether the fault has happened.
func (f *FaultWriter) Cut() bool { return f.cut }

// Sync wraps the target's flush: after a power cut it does nothing and
// reports success, as a dead machine's would have.
func (f *FaultWriter) Sync(inner func() error) func() error {
	return func() error {
		if f.cut || inner == nil {
			return nil
		}
		return inner()
	}
}
