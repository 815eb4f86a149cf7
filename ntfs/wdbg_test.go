package ntfs

import (
	"math/rand"
	"os/exec"
	"testing"
)

func TestWDbg(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	v := wtMakeVolume(t, 256<<20, "-s", "512", "-c", "4096")
	w := wtWriter(t, v.path)
	m := &wtModel{paths: map[string]bool{}, up: w.up}
	wtBuild(t, v.path, r, m, []string{"one", "two", "two/deep", "two/deep/er", "big"}, 3000)
	out, _ := exec.Command("istat", v.path, "66").CombinedOutput()
	t.Log(string(out))
}
