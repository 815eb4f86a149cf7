package offline

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"
)

// reviewBrokenHiberFS serves hiberfil.sys as a large file whose reads fail
// (a bad sector under it, or a permission problem on the mount).
type reviewBrokenHiberFS struct{ statErr error }

type reviewBrokenFile struct{ fs.FileInfo }

func (f reviewBrokenFile) Stat() (fs.FileInfo, error) { return f.FileInfo, nil }
func (reviewBrokenFile) Read([]byte) (int, error)     { return 0, errors.New("input/output error") }
func (reviewBrokenFile) Close() error                 { return nil }

func (b reviewBrokenHiberFS) Open(name string) (fs.File, error) {
	if name != "hiberfil.sys" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if b.statErr != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: b.statErr}
	}
	fi, _ := fstest.MapFS{"hiberfil.sys": {Data: nil, Mode: 0o444, ModTime: time.Time{}}}.Stat("hiberfil.sys")
	return reviewBrokenFile{reviewSized{fi}}, nil
}

// reviewSized reports a 1 GiB size.
type reviewSized struct{ fs.FileInfo }

func (reviewSized) Size() int64 { return 1 << 30 }

// TestReviewFromDirectoryUnreadableHiberfil: a hiberfil.sys that exists
// but cannot be read must not leave the volume writable: whether Windows
// is hibernated is then unknown, and fix must refuse.
func TestReviewFromDirectoryUnreadableHiberfil(t *testing.T) {
	for _, tc := range []struct {
		name string
		fsys fs.FS
	}{
		{"read fails", reviewBrokenHiberFS{}},
		{"stat fails", reviewBrokenHiberFS{statErr: fs.ErrPermission}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Safety
			s.fromDirectory(tc.fsys)
			if len(s.Refusals) == 0 {
				t.Fatalf("no refusal for an unreadable hiberfil.sys: %+v", s)
			}
		})
	}
	// A missing hiberfil.sys is not a refusal.
	var s Safety
	s.fromDirectory(fstest.MapFS{})
	if len(s.Refusals) != 0 {
		t.Fatalf("refusals without hiberfil.sys: %+v", s.Refusals)
	}
}
