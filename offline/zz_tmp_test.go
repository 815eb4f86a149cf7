package offline

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"
)

func TestZZTmpSlow(t *testing.T) {
	used := func(c []byte) []byte { return c[:binary.LittleEndian.Uint32(c[48:])] }
	seeds := [][]byte{used(genChunk(1, sampleEvents())), used(genChunk(1, richEvents())),
		slices.Concat(used(genChunk(1, sampleEvents())), used(genChunk(5, richEvents())), used(genChunk(9, sampleEvents()[2:])))}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		d := slices.Clone(seeds[i%len(seeds)])
		for k := 0; k < 1+r.IntN(4); k++ {
			switch r.IntN(3) {
			case 0:
				d[r.IntN(len(d))] = byte(r.Uint32())
			case 1:
				a, b := r.IntN(len(d)), r.IntN(len(d))
				n := r.IntN(2000)
				if a+n < len(d) && b+n < len(d) {
					copy(d[b:], d[a:a+n])
				}
			case 2:
				a := r.IntN(len(d))
				n := r.IntN(4000)
				if a+n < len(d) {
					d = append(d, d[a:a+n]...)
				}
			}
		}
		file := fuzzEVTXFile(d)
		st := time.Now()
		n := 0
		ReadEVTX(bytes.NewReader(file), int64(len(file)), func(*EVTXEvent) bool { n++; return n < 1000 })
		if el := time.Since(st); el > 200*time.Millisecond {
			os.WriteFile("/tmp/slow.bin", d, 0o644)
			t.Fatalf("input %d: %v (%d events)", i, el, n)
		}
	}
}
