package session

import (
	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/ntfs"
)

// The leaf types commands print, named here so that cmd needs no leaf
// package.
type (
	// DirEntry is one index entry of a directory (ntfs.DirEntry).
	DirEntry = ntfs.DirEntry
	// Range is a labelled byte range (journal.Range).
	Range = journal.Range
	// CheckOptions says what the NTFS checker covers (ntfs.CheckOptions).
	CheckOptions = ntfs.CheckOptions
	// CheckReport is the NTFS checker's report (ntfs.CheckReport).
	CheckReport = ntfs.CheckReport
)

// ErrExist is returned when a rename's new name exists already.
var ErrExist = ntfs.ErrExist

// List lists a directory of the volume from its index, in on-disk order.
func (v *Volume) List(dir string) ([]DirEntry, error) {
	w, err := ntfs.OpenReadOnly(v.Reader(), v.Size)
	if err != nil {
		return nil, err
	}
	return w.List(dir)
}

// Check runs the NTFS checker on the volume.
func (v *Volume) Check(opts CheckOptions) (*CheckReport, error) {
	return ntfs.Check(v.Reader(), v.Size, opts)
}
