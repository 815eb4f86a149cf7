// Package journal makes every write to a target undoable and crash-safe.
//
// Before the first byte of a target is changed, every range about to be
// overwritten is saved in a journal file together with its new content, and
// the journal is flushed to stable storage (file and directory). Only then
// are the writes made, the target flushed, and a commit mark appended. The
// saved original bytes let [UndoOn] put the target back exactly as it was,
// and let a fix interrupted by a crash or power cut be rolled back (or
// finished with [ResumeOn]).
//
// # Units and groups
//
// A plan is made of units: one rename, one hive edit, one file rewrite,
// each taking the target from one consistent state to another. Every
// saved range carries the units that wrote it ([Overlay.Unit],
// [Overlay.Labeled]). Units whose ranges overlap or share a block (two
// renames in one INDX block or one MFT record; [Overlay.SetGroup] sets the
// block, by default the sector) form a group. Undo and resume decide per
// group and never write part of one: a group is restored whole or left
// whole, as it is now, and each of its units is reported ([UnitResult]).
//
// # Undo is defined by content
//
// Undo does not trust a progress counter: for every saved range it compares
// the target's current bytes with the saved old and new bytes. A range whose
// every byte equals either its old or its new value is ours (fully written,
// not written, or torn half-way by a power cut); a range with any byte
// equal to neither was changed since (Windows booted and wrote it). A group
// is restored only if every range of it is ours; otherwise the whole group
// is left and reported (changed since, or sharing bytes with a change that
// was). This makes undo idempotent and safe to repeat, and it never
// clobbers newer data or leaves a half-undone rename. Ranges in one journal
// never overlap ([Journal.Add] refuses it; [Overlay] merges a plan's
// writes), so the saved old bytes are always the original bytes. Resume
// finishes an interrupted fix only if every group can be finished, and
// writes nothing otherwise.
//
// # Damaged journals
//
// A journal on a USB stick may be cut, flipped or lost. A journal file
// gets its name only once its plan is complete and flushed (it is written
// as NAME.part first), so a named journal that lacks its plan mark is
// damaged, never a crash while planning. Every frame carries a CRC and
// every range its position in its group and the group's size, so a lost
// frame shows; the reader skips a damaged frame and resynchronises on the
// next one that verifies. Undo from a damaged journal restores only groups
// whose every range was read from a frame that verifies, and returns a
// *[DamagedError] saying which file, how many units are whole, and
// whether the fix had started writing; a damaged journal file is never
// modified. [Find] returns damaged, unreadable and missing journals (a gap
// in the numbers of a volume's journals) with their damage instead of
// skipping them, so undo never says "nothing to undo" for them.
//
// # Coordinates and growth
//
// Offsets are in the coordinates of the caller's reader ([Header.Space]):
// [SpaceVolume] (from the start of the volume, as version 1 and 2 journals
// are) or [SpaceFile] (the target file or device itself, container
// metadata included, as the session layer journals). A container format
// may append clusters: [Overlay.AllowGrowth] accepts writes past the base's
// end, the journal records the old and new sizes, ranges past the old size
// have no original bytes, and undo cuts the target back through a
// [Device] that implements [Truncater], unless it grew further since.
//
// # Where journals live
//
// Never on the volume being repaired: beside an image file by default, for a
// device or drive letter in a directory the user names or the directory of
// the executable (see [ChooseDir]). Journals are found again from the
// volume's identity ([VolumeID]: serial number and size, and for an image
// file its name), so `/dev/sdb3` today and `/dev/sdc3` tomorrow, or `D:` in
// WinPE and `E:` later, find the same journal.
//
// # How a command uses it
//
//	dir, err := journal.ChooseDir(target, isImageFile, journalFlag) // ErrNoJournalDir: refuse
//	infos, _ := journal.Find(dir, id)  // every command: Interrupted() or Damaged() => print Advice
//	plan := journal.NewOverlay(target, size); plan.SetAlign(sectorSize)
//	u := plan.Unit(`rename \Windows\SoftwareDistribution`) // one per change
//	... editors write into u (or plan.Labeled("what")) and read plan back ...
//	plan.Ranges(), plan.Groups()       // --dry-run prints these; nothing written
//	path, err := journal.CommitOn(dir, journal.Header{ID: id, Space: journal.SpaceFile, ...}, plan, dev)
//	// undo TARGET: for each of journal.Undoable(infos), newest first:
//	rep, err := journal.UndoOn(info.Path, dev) // rep.Units; err may be a *journal.DamagedError
//	// fix TARGET with an interrupted journal: journal.ResumeOn(info.Path, dev)
//
// [Commit], [Undo] and [Resume] are the same with a loose reader, writer
// and flush function instead of a [Device].
//
// # File format (version 3, little-endian)
//
// An 8-byte magic "WUOJRNL\x00", then frames. A frame is
//
//	type     u8      'H' header, 'W' write, 'P' prepared, 'C' committed, 'U' undone
//	reserved [3]u8   zero
//	length   u32     payload length
//	payload  [length]byte
//	crc      u32     CRC-32C (Castagnoli) of type..payload
//
// The header ('H') holds: version u16 (3), reserved u16, volume serial
// u64, volume size i64, offset of the volume in the target i64, creation
// time i64 (Unix ns), seq u64, journal id u64 (random), old size i64, new
// size i64, group block i64, then five strings (u16 length + UTF-8): image
// name, target, tool, note, space ("volume" or "file").
//
// Then one 'W' frame per saved range, group by group: offset i64, length
// u32, flags u16 (1: grown, past the old size, no old bytes), unit count
// u16, group u32, index of the range in its group u32, ranges in the group
// u32, journal id u64; then per unit its id u32 and label (u16 length +
// UTF-8; given in the first frame naming the unit, empty later); then the
// old bytes (absent when grown) and the new bytes.
//
// Then one 'P' frame: range count u32, total bytes u64, group count u32,
// unit count u32, SHA-256 of all 'W' payloads in order. Only 'C' (time
// i64) and 'U' (time i64, then u32 counts: ranges restored, already
// original, changed since, lost, left; units restored, units left) marks
// follow it; the last mark gives the state. A mark half-appended by a
// crash (a frame running past the end, or a zero-filled tail) is cut off
// before the next mark is appended; it loses nothing.
//
// Versions 1 and 2 (version 1 has no seq) are still read: their header
// ends with the four strings, their 'W' frames hold offset, length, label,
// old and new bytes, their 'P' frame count, bytes and checksum, their 'U'
// frame four counts. They read as space "volume"; units are made from the
// labels, and a damaged version 1 or 2 journal restores nothing (it cannot
// tell which unit a lost frame belonged to).
package journal
