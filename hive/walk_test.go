package hive

import (
	"errors"
	"testing"
)

// TestKeyWalkFromSubkey: Key.Walk visits exactly the key and its subtree,
// and stops on a planted loop below a subkey instead of looping (reg export
// and reg delete's count rely on it).
func TestKeyWalkFromSubkey(t *testing.T) {
	h := mustOpen(t, "ManySubkeysHive")
	k, err := h.OpenKey("key_with_many_subkeys")
	if err != nil {
		t.Fatal(err)
	}
	// The expected count, by plain recursion over Subkeys (a sound hive).
	var count func(k *Key) int
	count = func(k *Key) int {
		subs, err := k.Subkeys()
		if err != nil {
			t.Fatal(err)
		}
		n := 1
		for _, s := range subs {
			n += count(s)
		}
		return n
	}
	want := count(k)
	n := 0
	if err := k.Walk(func(*Key) error { n++; return nil }); err != nil || n != want || n < 5001 {
		t.Errorf("walk from %s: %d keys, %v; want %d", k.Path(), n, err, want)
	}

	// 1\2 lists 1's own subkey list: a loop below key 1.
	m := loadMutable(t, "DeletedTreeHive")
	k2, one := m.key(`1\2`), m.key("1")
	m.put32(k2.off, nkOffSubkeys, 1)
	m.put32(k2.off, nkOffSubkeyList, one.nk.subkeyList)
	start, err := m.open().OpenKey("1")
	if err != nil {
		t.Fatal(err)
	}
	visits := 0
	err = start.Walk(func(*Key) error { visits++; return nil })
	if err == nil || !(errors.Is(err, ErrParent) || errors.Is(err, ErrLoop)) {
		t.Fatalf("walk from 1 over a loop: %v after %d keys; want ErrParent or ErrLoop", err, visits)
	}
}
