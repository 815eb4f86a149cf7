package ntfs

import (
	"fmt"
)

func wtDump(tr *ixTree, n *ixNode, ind string) string {
	s := fmt.Sprintf("%snode vcn=%d internal=%v used=%d\n", ind, n.vcn, n.internal, n.used())
	for _, e := range n.entries {
		nm := "END"
		if !e.end {
			nm = string16(e.name)
			if len(nm) > 20 {
				nm = nm[:20]
			}
		}
		s += fmt.Sprintf("%s  %q childVCN=%d\n", ind, nm, e.childVCN)
		if n.internal {
			c, err := tr.childOf(e)
			if err != nil {
				s += ind + "  ERR " + err.Error() + "\n"
				continue
			}
			s += wtDump(tr, c, ind+"    ")
		}
	}
	return s
}
