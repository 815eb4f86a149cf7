// Package journal makes every write to a volume undoable and crash-safe.
//
// Before the first byte of a volume is changed, every range about to be
// overwritten is saved in a journal file together with its new content, and
// the journal is flushed to stable storage (file and directory). Only then
// are the writes made, the target flushed, and a commit mark appended. The
// saved original bytes let [Undo] put the volume back exactly as it was, and
// let a fix interrupted by a crash or power cut be rolled back (or finished
// with [Resume]).
//
// # Undo is defined by content
//
// Undo does not trust a progress counter: for every saved range it compares
// the volume's current bytes with the saved old and new bytes. A range whose
// every byte equals either its old or its new value is ours (fully written,
// not written, or torn half-way by a power cut) and is restored; a range with
// any byte equal to neither was changed since (Windows booted and wrote it)
// and is left untouched and reported. This makes undo idempotent and safe to
// repeat, and it never clobbers newer data. Ranges in one journal never
// overlap ([Journal.Add] refuses it; [Overlay] merges a plan's writes), so
// the saved old bytes are always the original bytes.
//
// # Where journals live
//
// Never on the volume being repaired: beside an image file by default, for a
// device or drive letter in a directory the user names or the directory of
// the executable (see [ChooseDir]). Journals are found again from the
// volume's identity ([VolumeID]: serial number and size, and for an image
// file its name), so `/dev/sdb3` today and `/dev/sdc3` tomorrow, or `D:` in
// WinPE and `E:` later, find the same journal. Offsets in a journal are
// relative to the volume, not to the disk that holds it.
//
// # How a command uses it
//
//	dir, err := journal.ChooseDir(target, isImageFile, journalFlag) // ErrNoJournalDir: refuse
//	infos, _ := journal.Find(dir, id)  // every command: an Interrupted() one => print Advice
//	plan := journal.NewOverlay(volume, size); plan.SetAlign(sectorSize)
//	... editors write into plan (or plan.Labeled("what")) and read it back ...
//	plan.Ranges()                       // --dry-run prints these; nothing written
//	path, err := journal.Commit(dir, journal.Header{ID: id, ...}, plan, volumeW, sync)
//	// undo TARGET: for each of journal.Undoable(infos), newest first:
//	rep, err := journal.Undo(info.Path, volumeR, volumeW, sync) // rep.Results, rep.Summary()
//	// fix TARGET with an interrupted journal: journal.Resume(info.Path, ...)
//
// # File format (version 2, little-endian)
//
// An 8-byte magic "WUOJRNL\x00", then frames. A frame is
//
//	type     u8      'H' header, 'W' write, 'P' prepared, 'C' committed, 'U' undone
//	reserved [3]u8   zero
//	length   u32     payload length
//	payload  [length]byte
//	crc      u32     CRC-32C (Castagnoli) of type..payload
//
// The first frame is the header ('H'); then 'W' frames, one per saved
// range (offset i64, length u32, label length u16, label, old bytes, new
// bytes); then one 'P' frame (record count, total bytes, SHA-256 of all 'W'
// payloads in order), which proves the plan is complete. Only 'C' and 'U'
// marks may follow it; the last mark gives the state. A journal without 'P'
// was never prepared, so by contract nothing was written to the target.
// A frame that runs past the end of the file or a zero-filled tail is a torn
// append (a crash while writing the journal) and is cut off before the next
// mark is appended; any other damage is reported and the journal is then
// never modified.
package journal
