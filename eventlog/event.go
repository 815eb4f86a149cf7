package eventlog

import (
	"strconv"
	"strings"
	"time"
)

// Event is one event record.
type Event struct {
	RecordID uint64
	// Written is the record's FILETIME (UTC).
	Written  time.Time
	Provider string // System/Provider@Name
	EventID  int    // System/EventID
	// Data are the values of the EventData/Data elements in order (other
	// EventData children, such as Binary, are not data values).
	Data []string
	// UserData are the values of the leaf elements under UserData, which
	// some providers write instead of EventData.
	UserData []string
	// Named maps the Name attribute of each Data element, and the element
	// name of each UserData leaf, to its value.
	Named map[string]string
}

// xnode is a decoded XML element.
type xnode struct {
	name     string
	attrs    [][2]string
	children []*xnode
	text     strings.Builder
}

func (n *xnode) child(name string) *xnode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (n *xnode) attr(name string) string {
	for _, a := range n.attrs {
		if a[0] == name {
			return a[1]
		}
	}
	return ""
}

// fill extracts the fields of Event from the decoded XML.
func (ev *Event) fill(root *xnode) {
	e := root.child("Event")
	if e == nil {
		return
	}
	if sys := e.child("System"); sys != nil {
		if p := sys.child("Provider"); p != nil {
			ev.Provider = p.attr("Name")
		}
		if id := sys.child("EventID"); id != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(id.text.String())); err == nil {
				ev.EventID = n
			}
		}
	}
	if d := e.child("EventData"); d != nil {
		for _, c := range d.children {
			if c.name != "Data" {
				continue
			}
			v := c.text.String()
			ev.Data = append(ev.Data, v)
			if name := c.attr("Name"); name != "" {
				if ev.Named == nil {
					ev.Named = map[string]string{}
				}
				ev.Named[name] = v
			}
		}
	}
	if u := e.child("UserData"); u != nil {
		var walk func(n *xnode, depth int)
		walk = func(n *xnode, depth int) {
			if depth > maxDepth {
				return
			}
			if len(n.children) == 0 {
				ev.UserData = append(ev.UserData, n.text.String())
				if ev.Named == nil {
					ev.Named = map[string]string{}
				}
				ev.Named[n.name] = n.text.String()
			}
			for _, c := range n.children {
				walk(c, depth+1)
			}
		}
		for _, c := range u.children {
			walk(c, 0)
		}
	}
}
