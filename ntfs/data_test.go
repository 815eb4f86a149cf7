package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"wuoffline/internal/testutil"
)

// TestDataWrites edits files in place (resident and not, within and beyond
// the allocation, resident data growing out of its record, shrinking) and
// after every commit compares each file with the expected bytes through an
// ntfs-3g mount and sleuthkit's icat, and runs Check --all (which checks
// cluster ownership against $Bitmap).
func TestDataWrites(t *testing.T) {
	for _, geo := range [][]string{{"-s", "512", "-c", "4096"}, {"-s", "512", "-c", "1024"}} {
		t.Run(geo[3], func(t *testing.T) {
			v := wtMakeVolume(t, 64<<20, geo...)
			mp, unmount := wtMount(t, v.path, false)
			r := rand.New(rand.NewSource(5))
			want := map[string][]byte{
				"small.txt":     []byte("127.0.0.1 localhost\n"),
				"dir/big.bin":   wtRand(r, 100000),
				"dir/other.bin": wtRand(r, 9000),
			}
			os.Mkdir(filepath.Join(mp, "dir"), 0o755)
			for n, b := range want {
				if err := os.WriteFile(filepath.Join(mp, n), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			unmount()
			w := wtWriter(t, v.path)
			type op struct {
				file  string
				off   int64
				data  []byte
				trunc int64 // >= 0: truncate instead
			}
			ops := []op{
				{"small.txt", 0, []byte("10.0.0.1 "), -1},                    // resident overwrite
				{"small.txt", 20, []byte("more resident\n"), -1},             // resident growth
				{"small.txt", 30, wtRand(r, 3000), -1},                       // out of the record
				{"small.txt", 5000, []byte("past the initialized size"), -1}, // zero gap, beyond allocation
				{"dir/big.bin", 4000, wtRand(r, 10000), -1},                  // overwrite across clusters
				{"dir/big.bin", 0, nil, 150000},                              // grow beyond the allocation
				{"dir/big.bin", 149990, wtRand(r, 20), -1},                   // write at the new end
				{"dir/big.bin", 0, nil, 5000},                                // shrink, freeing clusters
				{"dir/other.bin", 9000, wtRand(r, 300000), -1},               // append, allocating
				{"dir/other.bin", 0, nil, 0},                                 // empty
			}
			for i, o := range ops {
				f, err := w.OpenData(o.file)
				if err != nil {
					t.Fatal(err)
				}
				cur := want[o.file]
				if o.trunc >= 0 {
					err = f.Truncate(o.trunc)
					if o.trunc <= int64(len(cur)) {
						cur = cur[:o.trunc]
					} else {
						cur = append(cur, make([]byte, o.trunc-int64(len(cur)))...)
					}
				} else {
					_, err = f.WriteAt(o.data, o.off)
					if end := o.off + int64(len(o.data)); end > int64(len(cur)) {
						cur = append(cur, make([]byte, end-int64(len(cur)))...)
					}
					copy(cur[o.off:], o.data)
				}
				if err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
				got := make([]byte, len(cur))
				if n, err := f.ReadAt(got, 0); n != len(cur) || !bytes.Equal(got, cur) {
					t.Fatalf("op %d: staged read %d bytes (%v), differs", i, n, err)
				}
				plan, err := f.Plan()
				if err != nil {
					t.Fatal(err)
				}
				wrote, err := f.Commit()
				if err != nil {
					t.Fatalf("op %d: commit: %v", i, err)
				}
				if len(plan) != len(wrote) {
					t.Errorf("op %d: plan %v, wrote %v", i, plan, wrote)
				}
				want[o.file] = cur
				wtVerifyData(t, v.path, want)
				if t.Failed() {
					t.FailNow()
				}
			}
		})
	}
}

func wtRand(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func wtVerifyData(t *testing.T, img string, want map[string][]byte) {
	t.Helper()
	wtCheckAll(t, img)
	mp, unmount := wtMount(t, img, true)
	defer unmount()
	for n, b := range want {
		got, err := os.ReadFile(filepath.Join(mp, n))
		if err != nil {
			t.Errorf("ntfs-3g: %s: %v", n, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("ntfs-3g: %s: %d bytes, want %d (or contents differ)", n, len(got), len(b))
		}
		st, _ := os.Stat(filepath.Join(mp, n))
		if st.Size() != int64(len(b)) {
			t.Errorf("ntfs-3g: %s: size %d, want %d", n, st.Size(), len(b))
		}
	}
	// icat reads the data by inode, with its own run list decoding.
	testutil.RequireTool(t, "icat")
	f := wtFile(t, img)
	st, _ := f.Stat()
	w, err := OpenReadOnly(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for n, b := range want {
		nums, err := w.begin().resolve(n)
		if err != nil {
			t.Fatal(err)
		}
		got := testutil.Run(t, "icat", img, fmt.Sprint(nums[len(nums)-1]))
		if !bytes.Equal(got, b) {
			t.Errorf("icat: %s: %d bytes, want %d (or contents differ)", n, len(got), len(b))
		}
		checked += len(got)
	}
	if checked == 0 && len(want) > 0 {
		t.Log("all files empty")
	}
}

func TestDataRefusals(t *testing.T) {
	v := wtMakeVolume(t, 32<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	os.WriteFile(filepath.Join(mp, "f"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(mp, "d"), 0o755)
	unmount()
	w := wtWriter(t, v.path)
	if _, err := w.OpenData("d"); err == nil {
		t.Error("OpenData on a directory succeeded")
	}
	if _, err := w.OpenData("$MFT"); err == nil {
		t.Error("OpenData on $MFT succeeded")
	}
	if _, err := w.OpenData("missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenData on a missing file: %v", err)
	}
}
