#!/usr/bin/env python3
"""Decode security descriptors with Samba's NDR code (python3-samba), which
shares no code with wuoffline: for each input line "LABEL HEX" print one
JSON line with the fields the Go tests compare, or the error. An input
"LABEL sddl:STRING" is Samba's own reading of an SDDL string instead
(security.descriptor.from_sddl).

  {"label": ..., "revision": 1, "control": 32788, "owner": "S-1-5-18",
   "group": ..., "dacl": {"revision": 2, "aces": [[type, flags, mask, sid]]},
   "sacl": ..., "sddl": "..."}   or   {"label": ..., "error": "..."}

An ACE of a type other than 0-3 is listed with an empty SID.
"""

import json
import sys

from samba.dcerpc import security
from samba.ndr import ndr_unpack

DOMAIN = security.dom_sid("S-1-5-21-1-2-3")


def acl(a):
    if a is None:
        return None
    return {"revision": int(a.revision),
            "aces": [[int(e.type), int(e.flags), int(e.access_mask),
                      str(e.trustee) if int(e.type) <= 3 else ""] for e in a.aces]}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        label, hexdata = line.split(" ", 1)
        out = {"label": label}
        try:
            if hexdata.startswith("sddl:"):
                sd = security.descriptor.from_sddl(hexdata[5:], DOMAIN)
            else:
                sd = ndr_unpack(security.descriptor, bytes.fromhex(hexdata))
            out.update({"revision": int(sd.revision), "control": int(sd.type),
                        "owner": str(sd.owner_sid) if sd.owner_sid else None,
                        "group": str(sd.group_sid) if sd.group_sid else None,
                        "dacl": acl(sd.dacl), "sacl": acl(sd.sacl),
                        "sddl": sd.as_sddl(DOMAIN)})
        except Exception as e:  # any failure to decode is a verdict to compare
            out["error"] = repr(e)
        print(json.dumps(out))


main()
