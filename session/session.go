// Package session is a TARGET (or a hive file) opened for a journaled
// change: it opens the target once with exclusive access (package access),
// finds the volume, checks every refusal (safety state, mounts, read-only,
// another wuoffline, the journal's place and its device), finds interrupted
// journals, plans changes on a journal.Overlay of the whole file, commits
// them through the journal, and verifies them by reading back from the
// medium with caches dropped.
//
// Every journaled write of wuoffline goes through here: fix and undo
// (package offline), mv, check and reg (cmd/wuoffline).
//
// Journals written here hold FILE coordinates (the byte offsets of the
// image file or device, journal.SpaceFile); one plan unit (a rename, a hive
// edit, a file rewrite) is one journal unit, and units sharing a cluster
// are grouped. Journals in volume coordinates (made before sessions) still
// replay (Replay).
package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/access"
	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/journal"
)

// Tool is what journals record as the program that wrote them.
const Tool = "wuoffline"

// Refusal is a precondition that failed: nothing is written.
type Refusal struct {
	ID     string // "read-only", "mounted", "locked", "journal", "interrupted", or an ntfs refusal id
	Reason string
	Advice string
}

// RefusedError carries the refusals that stop a write (exit 3).
type RefusedError struct {
	Refusals []Refusal
}

func (e *RefusedError) Error() string {
	var parts []string
	for _, r := range e.Refusals {
		parts = append(parts, r.Reason)
	}
	return "refused: " + strings.Join(parts, "; ")
}

// ErrDirectory is returned by Open for a directory (a mounted volume): the
// operating system's own calls change it, not a session.
var ErrDirectory = errors.New("session: the target is a directory")

// Options controls Open.
type Options struct {
	// Write opens the target with exclusive access for writing. Without it
	// the target is opened read-only.
	Write bool
	// DryRun (read-only) still reports the refusals a write would meet:
	// the target in use, no place for the journal.
	DryRun bool
	// JournalDir is --journal DIR ("" = beside an image file, or the
	// executable's directory for a device: journal.ChooseDir).
	JournalDir string
	// Now stamps changed NTFS times and registry last-written times
	// (nil: time.Now).
	Now func() time.Time
}

// Session is an opened TARGET.
type Session struct {
	Path string
	// Target is the target as identified on the opened file (reads are
	// cached: each block comes from the medium once).
	Target *image.Target

	opts    Options
	file    *access.File
	cache   *cachedFile
	jdir    string
	jdirErr error
	unlock  func() error
	refused []Refusal // dry run: what a write would meet
	vols    []*Volume
	device  bool
}

// backing is the cached file as image.New sees it.
type backing struct {
	*cachedFile
	f *access.File
}

func (b backing) Device() bool    { return b.f.Device() }
func (b backing) SectorSize() int { return b.f.SectorSize() }
func (b backing) Sync() error     { return b.f.Sync() }

// IsDirectory reports whether TARGET is a directory (a mounted volume).
func IsDirectory(path string) bool {
	if runtime.GOOS == "windows" && isDriveLetter(path) {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func isDriveLetter(s string) bool {
	s = strings.TrimRight(s, `\/`)
	return len(s) == 2 && s[1] == ':'
}

// Open opens TARGET once. With Options.Write it takes exclusive access and
// checks, before anything is created or written: read-only, in use
// (mounted, a loop device over it), held by another wuoffline, a place for
// the journal that is not on the target itself and not locked by another
// wuoffline. Those failures are a *RefusedError.
func Open(path string, opts Options) (*Session, error) {
	if path == "" {
		return nil, errors.New("no target given: name a disk image, a block device or a mounted directory")
	}
	if IsDirectory(path) {
		return nil, ErrDirectory
	}
	mode := access.Read
	if opts.Write {
		mode = access.Exclusive
	}
	f, err := access.Open(path, mode)
	if err != nil {
		return nil, openError(path, err)
	}
	var w io.WriterAt
	if opts.Write {
		w = f
	}
	s := &Session{Path: path, opts: opts, file: f, cache: newCachedFile(f, w, f.Size()), device: f.Device()}
	s.Target, err = image.New(path, backing{s.cache, f}, image.Options{Writable: opts.Write})
	if err != nil {
		f.Close()
		return nil, err
	}
	s.jdir, s.jdirErr = journal.ChooseDir(path, !f.Device(), opts.JournalDir)
	if opts.DryRun && !opts.Write {
		if users, _ := access.InUse(path); len(users) > 0 {
			s.refused = append(s.refused, inUseRefusal(path, users))
		}
	}
	if opts.Write || opts.DryRun {
		var refs []Refusal
		switch {
		case s.jdirErr != nil:
			refs = append(refs, Refusal{ID: "journal", Reason: fmt.Sprintf("no place for the undo journal: %v", s.jdirErr),
				Advice: "name a writable directory on another disk with --journal DIR"})
		case f.Device():
			if on, err := journal.OnDevice(s.jdir, path); err == nil && on {
				refs = append(refs, Refusal{ID: "journal", Reason: fmt.Sprintf("the journal directory %s is on %s, the disk being repaired", s.jdir, path),
					Advice: "name a directory on another disk with --journal DIR"})
			}
		}
		if len(refs) == 0 && opts.Write {
			s.unlock, err = access.LockDir(s.jdir, path)
			if err != nil {
				var re *RefusedError
				if !errors.As(openError(s.jdir, err), &re) {
					re = &RefusedError{Refusals: []Refusal{{ID: "journal", Reason: fmt.Sprintf("the journal directory cannot be locked: %v", err),
						Advice: "name a writable directory on another disk with --journal DIR"}}}
				}
				refs = append(refs, re.Refusals...)
			}
		}
		if opts.Write && len(refs) > 0 {
			s.Close()
			return nil, &RefusedError{Refusals: refs}
		}
		s.refused = append(s.refused, refs...)
	}
	return s, nil
}

// openError turns access's refusals into a *RefusedError.
func openError(path string, err error) error {
	var iu *access.InUseError
	switch {
	case errors.As(err, &iu):
		return &RefusedError{Refusals: []Refusal{inUseRefusal(path, iu.Users)}}
	case errors.Is(err, access.ErrReadOnly):
		return &RefusedError{Refusals: []Refusal{{ID: "read-only", Reason: fmt.Sprintf("%s cannot be written: %v", path, err),
			Advice: "check the file's permissions or the device's write protection (losetup -r, a write-protect switch); --dry-run shows the plan without writing"}}}
	case errors.Is(err, access.ErrLocked):
		return &RefusedError{Refusals: []Refusal{{ID: "locked", Reason: fmt.Sprintf("%s is in use by another wuoffline (%v)", path, err),
			Advice: "let the other wuoffline finish, then run this again"}}}
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: name an existing disk image, block device (e.g. /dev/sda, /dev/nvme0n1p3), mounted directory or drive letter: %w", path, err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s: permission denied: run as root (Linux) or as Administrator (Windows), or check the file's permissions: %w", path, err)
	}
	return err
}

func inUseRefusal(path string, users []string) Refusal {
	return Refusal{ID: "mounted", Reason: fmt.Sprintf("%s is in use: %s", path, strings.Join(users, "; ")),
		Advice: "unmount it (umount / fusermount -u) or detach the loop device (losetup -d) first"}
}

// Refusals are what a write would meet, found by a dry-run Open (the target
// in use, no place for the journal).
func (s *Session) Refusals() []Refusal { return s.refused }

// Device reports whether the target is a block device.
func (s *Session) Device() bool { return s.device }

// Stats counts the reads that reached the medium through this session.
func (s *Session) Stats() Stats {
	if s.cache == nil {
		return Stats{}
	}
	return s.cache.Stats()
}

// Wrap is a read-only session over a target opened by image.Open (diagnose
// reads it that way): its volumes and journals, nothing else.
func Wrap(path string, t *image.Target, opts Options) *Session {
	s := &Session{Path: path, Target: t, opts: Options{JournalDir: opts.JournalDir}, device: t.Device}
	s.jdir, s.jdirErr = journal.ChooseDir(path, !t.Device, opts.JournalDir)
	return s
}

// Close releases the journal directory lock and the target.
func (s *Session) Close() error {
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// Reopen opens the target again read-only, after flushing and dropping the
// kernel's cached pages, so that what the new session reads comes from the
// medium: the verification after a write. The exclusive session stays open
// (and locked) until its Close.
func (s *Session) Reopen() (*Session, error) {
	if err := s.file.DropCache(); err != nil && s.opts.Write {
		return nil, fmt.Errorf("dropping cached pages of %s: %w", s.Path, err)
	}
	f, err := access.Open(s.Path, access.Read)
	if err != nil {
		return nil, err
	}
	f.DropCache()
	n := &Session{Path: s.Path, opts: Options{JournalDir: s.opts.JournalDir, Now: s.opts.Now}, file: f, cache: newCachedFile(f, nil, f.Size()),
		jdir: s.jdir, jdirErr: s.jdirErr, device: f.Device()}
	n.Target, err = image.New(s.Path, backing{n.cache, f}, image.Options{})
	if err != nil {
		f.Close()
		return nil, err
	}
	return n, nil
}

// JournalDir is where this target's journals live (--journal DIR, beside an
// image file, or the executable's directory for a device).
func (s *Session) JournalDir() (string, error) { return s.jdir, s.jdirErr }

// now is the clock of changes.
func (s *Session) now() func() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now
	}
	return time.Now
}

// volumeID identifies a volume for its journals: the NTFS serial, the size
// and, for an image file, the file's base name (journal.VolumeID).
func volumeID(path string, device bool, serial uint64, size int64) journal.VolumeID {
	id := journal.VolumeID{Serial: serial, Size: size}
	if !device {
		id.Name = filepath.Base(path)
	}
	return id
}

// FixedVolumes lists the fixed volumes' drive letters on Windows ("C:",
// "D:", ...), for `diagnose` with no TARGET at a WinPE prompt; nothing
// elsewhere.
func FixedVolumes() ([]string, error) { return access.FixedVolumes() }
