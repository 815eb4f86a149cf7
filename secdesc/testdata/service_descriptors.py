#!/usr/bin/env python3
"""Print the Security value of every service of a SYSTEM hive, read with
python3-hivex (independent of wuoffline): one line per value,
"ControlSetNNN\\Services\\NAME TYPE HEX".

Usage: service_descriptors.py SYSTEM
"""

import sys

import hivex


def main():
    h = hivex.Hivex(sys.argv[1])
    root = h.root()
    for cs in h.node_children(root):
        name = h.node_name(cs)
        if not name.lower().startswith("controlset"):
            continue
        svcs = h.node_get_child(cs, "Services")
        if not svcs:
            continue
        for s in h.node_children(svcs):
            sec = h.node_get_child(s, "Security")
            if not sec:
                continue
            v = h.node_get_value(sec, "Security")
            if not v:
                continue
            t, data = h.value_value(v)
            print("%s\\Services\\%s %d %s" % (name, h.node_name(s), t, data.hex()))


main()
