package session

import (
	"fmt"
	"io"
	iofs "io/fs"
	"strings"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/ntfs"
)

// Volume is an NTFS volume of the session's target.
type Volume struct {
	image.Volume
	// ID identifies the volume's journals (NTFS serial, size, and the image
	// file's base name); zero when the boot sector cannot be read.
	ID journal.VolumeID

	s      *Session
	vol    *ntfs.Volume
	volErr error
	parsed bool
}

// Reader reads the volume's bytes (volume coordinates).
func (v *Volume) Reader() *io.SectionReader { return v.s.Target.ReaderAt(v.Volume) }

// NTFS is the volume parsed (once per session).
func (v *Volume) NTFS() (*ntfs.Volume, error) {
	if !v.parsed {
		v.vol, v.volErr = ntfs.Open(v.Reader(), v.Size)
		v.parsed = true
	}
	return v.vol, v.volErr
}

// Describe names the volume for messages: the target, and the partition.
func (v *Volume) Describe() string {
	if v.Index == 0 {
		return v.s.Path
	}
	return fmt.Sprintf("%s partition %d", v.s.Path, v.Index)
}

// Volumes lists the target's NTFS volumes.
func (s *Session) Volumes() []*Volume {
	if s.vols != nil {
		return s.vols
	}
	s.vols = []*Volume{}
	for _, iv := range s.Target.Volumes {
		if iv.Content != image.ContentNTFS {
			continue
		}
		v := &Volume{Volume: iv, s: s}
		if bs, err := ntfs.ReadBootSector(v.Reader()); err == nil {
			v.ID = volumeID(s.Path, s.Device(), bs.Serial, iv.Size)
		}
		s.vols = append(s.vols, v)
	}
	return s.vols
}

// Volume returns the NTFS volume with image index idx.
func (s *Session) Volume(idx int) (*Volume, bool) {
	for _, v := range s.Volumes() {
		if v.Index == idx {
			return v, true
		}
	}
	return nil, false
}

// Pick chooses the NTFS volume a command works on: partition when given,
// else on a disk the volume holding Windows\System32\config\SYSTEM, else the
// only NTFS volume.
func (s *Session) Pick(partition int) (*Volume, error) {
	if partition > 0 {
		for _, iv := range s.Target.Volumes {
			if iv.Index != partition {
				continue
			}
			if iv.Content != image.ContentNTFS {
				return nil, fmt.Errorf("partition %d of %s is not NTFS (%s)", partition, s.Path, iv.Content)
			}
			v, _ := s.Volume(partition)
			return v, nil
		}
		return nil, fmt.Errorf("%s has no partition %d", s.Path, partition)
	}
	nt := s.Volumes()
	var win []*Volume
	for _, v := range nt {
		if vol, err := v.NTFS(); err == nil {
			if _, err := iofs.Stat(vol.FS(), "Windows/System32/config/SYSTEM"); err == nil {
				win = append(win, v)
			}
		}
	}
	switch {
	case len(win) == 1:
		return win[0], nil
	case len(nt) == 1:
		return nt[0], nil
	case len(nt) == 0:
		return nil, fmt.Errorf("%s holds no NTFS volume", s.Path)
	}
	var idx []string
	for _, v := range nt {
		idx = append(idx, fmt.Sprint(v.Index))
	}
	return nil, fmt.Errorf("%s holds several NTFS volumes (partitions %s): choose one with --partition N", s.Path, strings.Join(idx, ", "))
}
