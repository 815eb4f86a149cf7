package journal

import (
	"fmt"
	"sort"
	"strings"
)

// unitRange is a byte range [off, end) and the units (ids from 1) that
// wrote it.
type unitRange struct {
	off, end int64
	units    []int
}

// groupUnits groups units 1..n: two units are in one group when a range
// carries both (overlapping writes merged into it) or when their ranges
// share a block of block bytes (two renames in one INDX block, two
// records in one sector). Groups are numbered from 0 in the order of
// their first range by offset. all puts every unit in one group. The
// result is indexed by unit id (index 0 unused).
func groupUnits(n int, rs []unitRange, block int64, all bool) []int {
	parent := make([]int, n+1)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	union := func(a, b int) {
		if ra, rb := find(a), find(b); ra != rb {
			parent[max(ra, rb)] = min(ra, rb)
		}
	}
	if all {
		for u := 2; u <= n; u++ {
			union(1, u)
		}
	}
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rs[order[a]].off < rs[order[b]].off })
	for k, i := range order {
		r := rs[i]
		for _, u := range r.units[1:] {
			union(r.units[0], u)
		}
		// Ranges are sorted: if two share a block, every range between
		// them lies in that block too, so joining neighbours suffices.
		if k > 0 {
			prev := rs[order[k-1]]
			if prev.end > r.off || (prev.end-1)/block == r.off/block {
				union(prev.units[0], r.units[0])
			}
		}
	}
	group := make([]int, n+1)
	num := map[int]int{}
	for _, i := range order {
		root := find(rs[i].units[0])
		if _, ok := num[root]; !ok {
			num[root] = len(num)
		}
	}
	for u := 1; u <= n; u++ {
		root := find(u)
		g, ok := num[root]
		if !ok {
			g = len(num) // a unit with no range: a group of its own
			num[root] = g
		}
		group[u] = g
	}
	return group
}

// joinLabels joins distinct non-empty labels for a report: at most
// maxLabels of them, then how many more.
func joinLabels(ls []string) string {
	var out []string
	more := 0
	seen := map[string]bool{}
	for _, l := range ls {
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		if len(out) < maxLabels {
			out = append(out, l)
		} else {
			more++
		}
	}
	s := strings.Join(out, "; ")
	if more > 0 {
		s += fmt.Sprintf("; and %d more", more)
	}
	return s
}
