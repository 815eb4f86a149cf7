package hive

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestReviewMaxSequenceHostileLogLinear: a log whose every 512-byte
// boundary holds an "HvLE" header claiming the rest of the file must not
// cost a hash of the rest per boundary (32 MiB of log would be ~1 TiB of
// hashing, a hang). Recovery reads the logs of every hive it opens, clean
// ones included, so this is reachable from Open.
func TestReviewMaxSequenceHostileLogLinear(t *testing.T) {
	primary := yarpFile(t, "NewDirtyHive1/NewDirtyHive")
	base := yarpFile(t, "NewDirtyHive1/NewDirtyHive.LOG2")
	const size = 32 << 20
	log := make([]byte, size)
	copy(log, base[:logSector])
	le := binary.LittleEndian
	for off := logSector; off+hvleHeaderSize <= size; off += logSector {
		e := log[off:]
		copy(e, hvleSignature)
		le.PutUint32(e[hvleOffSize:], uint32(size-off))
		le.PutUint32(e[hvleOffSequence:], 7)
		le.PutUint32(e[hvleOffHiveBins:], 4096)
		le.PutUint32(e[hvleOffPageCount:], 1)
		le.PutUint64(e[hvleOffHash1:], 1) // wrong: the body is never valid
		le.PutUint64(e[hvleOffHash2:], marvin32(logEntryHashSeed, e[:hvleOffHash2]))
	}
	lf, err := readLog(memLog("LOG2", log))
	if err != nil {
		t.Fatal(err)
	}
	// Entries whose header hash is valid count, even with a torn body:
	// a higher next sequence is the safe direction.
	if s, ok := lf.maxSequence(); !ok || s < 7 {
		t.Errorf("maxSequence = %d, %v; want >= 7", s, ok)
	}
	if _, err := recoverHive(bytes.NewReader(primary), int64(len(primary)), []Log{memLog("LOG2", log)}); err == nil {
		t.Log("recovered (the log's base block may still apply)")
	}
}
