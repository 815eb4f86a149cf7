package offline

import "wuoffline/journal"

// JournalDir returns where the journals of TARGET live, the same place for
// fix, mv and undo: flagDir when given, else beside an image file, else the
// directory holding the executable (journal.ChooseDir). It fails with
// journal.ErrNoJournalDir when none is writable: writing must then refuse.
func JournalDir(path string, device bool, flagDir string) (string, error) {
	return journalDirFor(path, device, flagDir)
}

// JournalVolumeID is the identity every command gives a volume's journals
// (the NTFS serial, the volume size, and an image file's base name), so
// that `wuoffline undo TARGET` finds what fix and mv wrote.
func JournalVolumeID(path string, device bool, serial uint64, size int64) journal.VolumeID {
	return volumeID(path, device, serial, size)
}
