package hive

import (
	"encoding/binary"
	"math/bits"
)

// logEntryHashSeed is the Marvin32 seed Windows uses for the two hashes of
// a new-format log entry. The seed is written 82 EF 4D 88 7A 4E 55 C5
// (formats.md) and is that digit string as one 64-bit number, so the low
// state word is 0x7A4E55C5. (Reading the bytes little-endian,
// 0xC5554E7A884DEF82, does NOT validate Windows' entries:
// TestLogEntriesHashes checks the value against logs Windows wrote.)
const logEntryHashSeed uint64 = 0x82EF4D887A4E55C5

// marvin32 computes Microsoft's Marvin32 hash of data with the given seed,
// as published with the .NET runtime: the seed's low and high halves form a
// two-word state; every little-endian 32-bit word of the input is added to
// the low word and mixed; the 0 to 3 trailing bytes are packed little-endian
// below a 0x80 marker byte and mixed as one more word; a final zero word is
// mixed; the result is high<<32 | low.
func marvin32(seed uint64, data []byte) uint64 {
	lo, hi := uint32(seed), uint32(seed>>32)
	for len(data) >= 4 {
		lo, hi = marvinMix(lo, hi, binary.LittleEndian.Uint32(data))
		data = data[4:]
	}
	final := uint32(0x80) << (8 * uint(len(data)))
	for i, c := range data {
		final |= uint32(c) << (8 * uint(i))
	}
	lo, hi = marvinMix(lo, hi, final)
	lo, hi = marvinMix(lo, hi, 0)
	return uint64(hi)<<32 | uint64(lo)
}

// marvinMix absorbs one 32-bit word into the state (the "block" function).
func marvinMix(lo, hi, v uint32) (uint32, uint32) {
	lo += v
	hi ^= lo
	lo = bits.RotateLeft32(lo, 20) + hi
	hi = bits.RotateLeft32(hi, 9) ^ lo
	lo = bits.RotateLeft32(lo, 27) + hi
	hi = bits.RotateLeft32(hi, 19)
	return lo, hi
}
