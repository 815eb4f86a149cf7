package ntfs

import (
	"errors"
	"fmt"
	"io"
)

// $LogFile restart pages (ntfs-3g include/ntfs-3g/logfile.h; the checks
// follow what ntfs-3g's logfile.c accepts). The log starts with two
// restart pages, at 0 and at the system page size; each holds a
// RESTART_PAGE_HEADER and a RESTART_AREA. The newer one (higher
// current LSN) is the one that counts.
const (
	rdLogBlockSize       = 512    // NTFS_BLOCK_SIZE: the update-sequence stride
	rdLogMaxPageSize     = 65536  // no Windows page size is larger
	rdLogNoClient        = 0xFFFF // LOGFILE_NO_CLIENT
	rdLogRestartIsClean  = 0x0002 // RESTART_VOLUME_IS_CLEAN
	rdLogRestartAreaMin  = 0x30   // fixed part of RESTART_AREA read here
	rdLogHeaderUSNOffset = 30     // offsetof(RESTART_PAGE_HEADER, usn): the USA starts no earlier
)

// LogFileRestart is the decoded state of $LogFile's current restart page.
type LogFileRestart struct {
	Empty        bool   // no restart page: every probed block is 0xFF-filled (ntfs-3g empties the log on mount)
	Offset       int64  // offset of the restart page used
	Magic        string // "RSTR", or "CHKD" after chkdsk
	MajorVersion int16  // RESTART_PAGE_HEADER major_ver @0x1C
	MinorVersion int16  // minor_ver @0x1A
	PageSize     uint32 // system_page_size @0x10
	CurrentLSN   uint64 // RESTART_AREA current_lsn @0
	ClientInUse  uint16 // client_in_use_list @0x0C
	Flags        uint16 // flags @0x0E
}

// Clean reports whether the log says the volume was unmounted cleanly:
// empty, or no client in use, or RESTART_VOLUME_IS_CLEAN set (Windows XP
// and later keep the client open even on a clean shutdown).
func (l *LogFileRestart) Clean() bool {
	return l.Empty || l.ClientInUse == rdLogNoClient || l.Flags&rdLogRestartIsClean != 0
}

// ReadLogFileRestart reads the restart pages of a $LogFile whose $DATA has
// size bytes. Only the restart pages are read (two pages, typically 8 KiB).
func ReadLogFileRestart(r io.ReaderAt, size int64) (*LogFileRestart, error) {
	if size < 2*rdLogBlockSize {
		return nil, fmt.Errorf("$LogFile: %d bytes is too small for two restart pages", size)
	}
	var (
		pages   []*LogFileRestart
		empty   = true
		lastErr error
		block   = make([]byte, rdLogBlockSize)
	)
	// Probe 0, 512, 1024, 2048, ... : the second restart page sits at the
	// system page size, which is only known from a valid first page.
	for pos := int64(0); pos+rdLogBlockSize <= size && pos <= rdLogMaxPageSize; pos = nextLogProbe(pos) {
		if _, err := r.ReadAt(block, pos); err != nil {
			return nil, fmt.Errorf("$LogFile: block at 0x%x: %w", pos, err)
		}
		magic := string(block[:4])
		if magic == "\xff\xff\xff\xff" {
			if !empty {
				break
			}
			continue
		}
		empty = false
		if magic == "RCRD" { // log records: no more restart pages
			break
		}
		if magic != "RSTR" && magic != "CHKD" {
			continue
		}
		p, err := readRestartPage(r, size, pos, block)
		if err != nil {
			lastErr = err
			continue
		}
		pages = append(pages, p)
		if pos != 0 {
			break
		}
		// The only other place a restart page may be is at the system
		// page size that this one states.
		if int64(p.PageSize)+rdLogBlockSize > size {
			break
		}
		if _, err := r.ReadAt(block, int64(p.PageSize)); err != nil {
			return nil, fmt.Errorf("$LogFile: block at 0x%x: %w", p.PageSize, err)
		}
		if m := string(block[:4]); m == "RSTR" || m == "CHKD" {
			if p2, err := readRestartPage(r, size, int64(p.PageSize), block); err == nil {
				pages = append(pages, p2)
			}
		}
		break
	}
	if empty {
		return &LogFileRestart{Empty: true}, nil
	}
	if len(pages) == 0 {
		if lastErr == nil {
			lastErr = errors.New("no RSTR or CHKD restart page and the log is not empty")
		}
		return nil, fmt.Errorf("$LogFile: %w", lastErr)
	}
	best := pages[0]
	if len(pages) == 2 && pages[1].CurrentLSN > best.CurrentLSN {
		best = pages[1]
	}
	return best, nil
}

func nextLogProbe(pos int64) int64 {
	if pos == 0 {
		return rdLogBlockSize
	}
	return pos * 2
}

// readRestartPage validates and decodes the restart page at pos, whose
// first block is head.
func readRestartPage(r io.ReaderAt, size, pos int64, head []byte) (*LogFileRestart, error) {
	where := fmt.Sprintf("restart page at 0x%x", pos)
	sps := le32(head[0x10:])
	lps := le32(head[0x14:])
	if sps < rdLogBlockSize || sps > rdLogMaxPageSize || !isPow2(sps) || lps < rdLogBlockSize || lps > rdLogMaxPageSize || !isPow2(lps) {
		return nil, fmt.Errorf("%s: page sizes %d/%d are not powers of two from 512 to 64 KiB", where, sps, lps)
	}
	if pos != 0 && pos != int64(sps) {
		return nil, fmt.Errorf("%s: not at 0 or at the system page size %d", where, sps)
	}
	if pos+int64(sps) > size {
		return nil, fmt.Errorf("%s: page of %d bytes runs past the end of the log (%d bytes)", where, sps, size)
	}
	p := &LogFileRestart{
		Offset:       pos,
		Magic:        string(head[:4]),
		PageSize:     sps,
		MinorVersion: int16(le16(head[0x1A:])),
		MajorVersion: int16(le16(head[0x1C:])),
	}
	if !(p.MajorVersion == 1 && p.MinorVersion == 1) && !(p.MajorVersion == 2 && p.MinorVersion == 0) {
		return nil, fmt.Errorf("%s: unknown log version %d.%d (known: 1.1, 2.0)", where, p.MajorVersion, p.MinorVersion)
	}
	page := make([]byte, sps)
	if _, err := r.ReadAt(page, pos); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	usaOfs := int(le16(page[4:]))
	usaCount := int(le16(page[6:]))
	usaEnd := rdLogHeaderUSNOffset
	// chkdsk may leave a CHKD page without update sequence protection.
	if !(p.Magic == "CHKD" && usaCount == 0) {
		if usaCount != 1+int(sps/rdLogBlockSize) {
			return nil, fmt.Errorf("%s: update sequence count %d, want %d for a %d-byte page", where, usaCount, 1+sps/rdLogBlockSize, sps)
		}
		usaEnd = usaOfs + 2*usaCount
		if usaOfs < rdLogHeaderUSNOffset || usaEnd > rdLogBlockSize-2 {
			return nil, fmt.Errorf("%s: update sequence array at 0x%x does not fit the first sector", where, usaOfs)
		}
		if err := applyFixups(page); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	raOfs := int(le16(page[0x18:]))
	if raOfs&7 != 0 || raOfs < usaEnd || raOfs+rdLogRestartAreaMin > int(sps) {
		return nil, fmt.Errorf("%s: restart area offset 0x%x is misaligned or outside the page", where, raOfs)
	}
	ra := page[raOfs:]
	p.CurrentLSN = le64(ra[0:])
	clients := le16(ra[0x08:])
	free := le16(ra[0x0A:])
	p.ClientInUse = le16(ra[0x0C:])
	p.Flags = le16(ra[0x0E:])
	if (free != rdLogNoClient && free >= clients) || (p.ClientInUse != rdLogNoClient && p.ClientInUse >= clients) {
		return nil, fmt.Errorf("%s: client lists (free %d, in use %d) overflow the %d client records", where, free, p.ClientInUse, clients)
	}
	return p, nil
}
