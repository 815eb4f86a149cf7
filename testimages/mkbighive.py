#!/usr/bin/env python3
"""Build a large, SOFTWARE-shaped registry hive with hivex (python3-hivex).

Usage: mkbighive.py MINIMAL_HIVE OUT [MEGABYTES]

Starts from a copy of MINIMAL_HIVE (hivex's own images/minimal) and adds a
deterministic tree (no randomness, no timestamps: the output is the same on
every run) until the hive holds about MEGABYTES (default 50) of data:
vendor keys, product keys, component keys with a mix of REG_SZ,
REG_EXPAND_SZ, REG_DWORD, REG_QWORD, REG_BINARY and REG_MULTI_SZ values,
non-ASCII string data, and one key with more subkeys than a leaf holds.  Used by
the hive editor's property test and benchmark (hive/edit_*_test.go), which
build it in a temporary directory: the 50 MB file is never committed.
"""

import os
import shutil
import struct
import sys

import hivex

REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 7, 11


def sz(t, s):
    return {"key": None, "t": t, "value": (s + "\0").encode("utf-16-le")}


def val(name, t, data):
    return {"key": name, "t": t, "value": data}


def values_for(i):
    """The values of component key number i: about 600 bytes of data."""
    return [
        val("DisplayName", REG_SZ, ("Component %06d \u00fcber \u043a\u043e\u043c\u043f\u043e\u043d\u0435\u043d\u0442\0" % i).encode("utf-16-le")),
        val("InstallPath", REG_EXPAND_SZ, ("%%ProgramFiles%%\\Vendor\\Product\\Component%06d\\bin\0" % i).encode("utf-16-le")),
        val("Version", REG_DWORD, struct.pack("<I", i * 2654435761 & 0xFFFFFFFF)),
        val("InstallTime", REG_QWORD, struct.pack("<Q", 132000000000000000 + i * 10_000_000)),
        val("Blob", REG_BINARY, bytes((i * 7 + j) & 0xFF for j in range(160 + i % 97))),
        val("Depends", REG_MULTI_SZ, ("dep%d\0core\0util%d\0\0" % (i % 13, i % 7)).encode("utf-16-le")),
    ]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    minimal, out = sys.argv[1], sys.argv[2]
    target = int(sys.argv[3] if len(sys.argv) == 4 else 50) * 1024 * 1024
    shutil.copyfile(minimal, out)
    os.chmod(out, 0o644)
    h = hivex.Hivex(out, write=True)
    root = h.root()
    # About 1.25 KiB of hive per component key with its values and lists
    # (hivex leaves the space of replaced value lists free).
    components = max(1, target // 1240)
    vendors, products = 24, 40
    per_product = max(1, components // (vendors * products))
    n = 0
    for v in range(vendors):
        # ASCII names only: hivex hashes lh entries with ASCII-only
        # upcasing, so a non-ASCII name would make the hive wrong from the
        # start (the editor's tests add non-ASCII names themselves).
        vname = "Vendor%02d" % v
        vk = h.node_add_child(root, vname)
        h.node_set_values(vk, [val("Publisher", REG_SZ, ("Publisher %d\0" % v).encode("utf-16-le"))])
        for p in range(products):
            pk = h.node_add_child(vk, "Product%03d" % p)
            for c in range(per_product):
                ck = h.node_add_child(pk, "Component%06d" % n)
                h.node_set_values(ck, values_for(n))
                n += 1
    # One key past the leaf limit (507 lh entries), as Windows' own
    # Classes key is.
    many = h.node_add_child(root, "ManySubkeys")
    for i in range(1200):
        h.node_add_child(many, "Sub%05d" % ((i * 7919) % 1200))
    h.commit(out)


if __name__ == "__main__":
    main()
