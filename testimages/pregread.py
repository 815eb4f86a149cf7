#!/usr/bin/env python3
"""Print the entries of a Group Policy registry file (Registry.pol) as JSON.

An independent reader for the tests, written from Microsoft's "Registry
Policy File Format" (it shares no code with wuoffline): the header "PReg"
and the u32 version 1, then entries [key;value;type;size;data] where the
brackets and semicolons are UTF-16LE characters, key and value
NUL-terminated UTF-16LE strings, type and size u32 little-endian.
It fails (exit 1) on anything else, trailing bytes included.

Usage: pregread.py FILE
"""
import json
import struct
import sys


def main():
    b = open(sys.argv[1], "rb").read()
    if b[:4] != b"PReg" or struct.unpack("<I", b[4:8])[0] != 1:
        sys.exit("not a PReg version 1 file")
    p, out = 8, []

    def ch(c):
        nonlocal p
        if b[p:p + 2] != c.encode("utf-16-le"):
            sys.exit("%r expected at offset %d" % (c, p))
        p += 2

    def string():
        nonlocal p
        e = p
        while b[e:e + 2] != b"\0\0":
            if e + 2 > len(b):
                sys.exit("unterminated string at %d" % p)
            e += 2
        s = b[p:e].decode("utf-16-le")
        p = e + 2
        return s

    def u32():
        nonlocal p
        if p + 4 > len(b):
            sys.exit("truncated at %d" % p)
        v = struct.unpack("<I", b[p:p + 4])[0]
        p += 4
        return v

    while p < len(b):
        ch("[")
        k = string()
        ch(";")
        v = string()
        ch(";")
        t = u32()
        ch(";")
        n = u32()
        ch(";")
        if p + n > len(b):
            sys.exit("data overruns the file at %d" % p)
        d = b[p:p + n]
        p += n
        ch("]")
        out.append({"key": k, "value": v, "type": t, "data": d.hex()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
