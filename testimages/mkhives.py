#!/usr/bin/env python3
"""Build the registry hives of the test images with hivex (python3-hivex).

Usage: mkhives.py MINIMAL_HIVE OUTDIR

hivex cannot create a hive from nothing, so every hive starts as a copy of
MINIMAL_HIVE (hivex's own images/minimal, an empty 1.5 hive) and is filled
with node_add_child / node_set_value, then committed.  hivex writes no
timestamps of its own, so the output is byte-for-byte reproducible.

For every profile P (see PROFILES) it writes OUTDIR/P/{SYSTEM,SOFTWARE,
COMPONENTS,DEFAULT,SAM,SECURITY,BCD}.  What each profile plants is listed in
testimages/findings.json; keep the two in step.
"""

import os
import shutil
import struct
import sys


REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 7, 11


def sz(s):
    return (REG_SZ, (s + "\0").encode("utf-16-le"))


def esz(s):
    return (REG_EXPAND_SZ, (s + "\0").encode("utf-16-le"))


def dword(n):
    return (REG_DWORD, struct.pack("<I", n & 0xFFFFFFFF))


def qword(n):
    return (REG_QWORD, struct.pack("<Q", n))


def binary(b):
    return (REG_BINARY, bytes(b))


def multi(strings):
    # Every string NUL-terminated, then one more NUL.  Empty strings in the
    # middle are kept on purpose: PendingFileRenameOperations uses an empty
    # destination to mean "delete", so readers must go by the value length.
    return (REG_MULTI_SZ, "".join(s + "\0" for s in strings).encode("utf-16-le") + b"\0\0")


def filetime(iso):
    """FILETIME (100 ns since 1601-01-01 UTC) of an ISO date 'YYYY-MM-DDTHH:MM:SS'."""
    import datetime
    dt = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    epoch = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)
    delta = dt - epoch
    return (delta.days * 86400 + delta.seconds) * 10_000_000


class Builder:
    """A tree of keys: path -> {value name: (type, bytes)}, kept in insertion order."""

    def __init__(self):
        self.keys = {"": {}}

    def key(self, path, **_):
        parts = [p for p in path.split("\\") if p]
        for i in range(1, len(parts) + 1):
            self.keys.setdefault("\\".join(parts[:i]), {})
        return "\\".join(parts)

    def set(self, path, name, val):
        self.keys[self.key(path)][name] = val

    def vals(self, path, values):
        p = self.key(path)
        for name, val in values.items():
            self.keys[p][name] = val

    def delete(self, path):
        for k in [k for k in self.keys if k == path or k.startswith(path + "\\")]:
            del self.keys[k]

    def copy_tree(self, src, dst):
        for k in list(self.keys):
            if k == src or k.startswith(src + "\\"):
                self.keys[dst + k[len(src):]] = dict(self.keys[k])
        self.key(dst)

    def write(self, minimal, out):
        import hivex  # here, so that findings.py can import the tables without it
        shutil.copyfile(minimal, out)
        os.chmod(out, 0o644)
        h = hivex.Hivex(out, write=True)
        nodes = {"": h.root()}
        # Parents before children; siblings in insertion order (hivex keeps
        # the subkey list sorted itself).
        for path in sorted(self.keys, key=lambda p: (p.count("\\") if p else -1)):
            if path == "":
                continue
            parent, _, name = path.rpartition("\\")
            nodes[path] = h.node_add_child(nodes[parent], name)
        for path, values in self.keys.items():
            if values:
                h.node_set_values(nodes[path], [
                    {"key": n, "t": t, "value": v} for n, (t, v) in values.items()])
        h.commit(None)


# ---------------------------------------------------------------------------
# Profiles

SVCHOST = "%systemroot%\\system32\\svchost.exe"

# name -> (ImagePath, Type, ObjectName, DisplayName, ServiceDll or None)
WU_SERVICES = {
    "wuauserv": (SVCHOST + " -k netsvcs -p", 0x20, "LocalSystem",
                 "@%systemroot%\\system32\\wuaueng.dll,-105", "%systemroot%\\system32\\wuaueng.dll"),
    "BITS": (SVCHOST + " -k netsvcs -p", 0x20, "LocalSystem",
             "@%SystemRoot%\\system32\\qmgr.dll,-1000", "%SystemRoot%\\System32\\qmgr.dll"),
    "CryptSvc": (SVCHOST + " -k NetworkService -p", 0x20, "NT Authority\\NetworkService",
                 "@%SystemRoot%\\system32\\cryptsvc.dll,-1001", "%SystemRoot%\\system32\\cryptsvc.dll"),
    "msiserver": ("%systemroot%\\system32\\msiexec.exe /V", 0x10, "LocalSystem",
                  "@%SystemRoot%\\system32\\msimsg.dll,-27", None),
    "EventLog": (SVCHOST + " -k LocalServiceNetworkRestricted -p", 0x20, "NT AUTHORITY\\LocalService",
                 "@%SystemRoot%\\system32\\wevtsvc.dll,-200", "%SystemRoot%\\System32\\wevtsvc.dll"),
    "TrustedInstaller": ("%SystemRoot%\\servicing\\TrustedInstaller.exe", 0x10, "localSystem",
                         "@%SystemRoot%\\servicing\\TrustedInstaller.exe,-100", None),
    "UsoSvc": (SVCHOST + " -k netsvcs -p", 0x20, "LocalSystem",
               "@%SystemRoot%\\system32\\usosvc.dll,-102", "%systemroot%\\system32\\usosvc.dll"),
    "WaaSMedicSvc": (SVCHOST + " -k wusvcs -p", 0x20, "LocalSystem",
                     "@%SystemRoot%\\system32\\WaaSMedicSvc.dll,-100", "%SystemRoot%\\System32\\WaaSMedicSvc.dll"),
    "DoSvc": (SVCHOST + " -k NetworkService -p", 0x20, "NT Authority\\NetworkService",
              "@%systemroot%\\system32\\dosvc.dll,-100", "%SystemRoot%\\system32\\dosvc.dll"),
}

# Start defaults per repair-catalog.md: (Start, DelayedAutostart)
DEFAULT_START = {
    10: {"wuauserv": (3, 0), "BITS": (2, 1), "CryptSvc": (2, 0), "msiserver": (3, 0), "EventLog": (2, 0),
         "TrustedInstaller": (3, 0), "UsoSvc": (3, 0), "WaaSMedicSvc": (3, 0), "DoSvc": (2, 1)},
    11: {"wuauserv": (3, 0), "BITS": (3, 0), "CryptSvc": (2, 0), "msiserver": (3, 0), "EventLog": (2, 0),
         "TrustedInstaller": (3, 0), "UsoSvc": (2, 1), "WaaSMedicSvc": (3, 0), "DoSvc": (3, 0)},
}

# Ordinary services around the ones that matter (names sort next to them).
OTHER_SERVICES = [
    ("AudioSrv", 2, 0x10), ("Audiosrv_x", 3, 0x10), ("BFE", 2, 0x20), ("BITS_", 3, 0x10), ("BrokerInfrastructure", 2, 0x20),
    ("CDPSvc", 2, 0x20), ("CryptSvc2", 3, 0x10), ("DcomLaunch", 2, 0x20), ("Dhcp", 2, 0x20),
    ("disk", 0, 0x1), ("Dnscache", 2, 0x20), ("DoSvc_", 3, 0x10), ("DPS", 2, 0x20), ("EventSystem", 2, 0x20),
    ("FontCache", 2, 0x20), ("LanmanServer", 2, 0x20), ("LanmanWorkstation", 2, 0x20), ("mpssvc", 2, 0x20),
    ("MpsSvc_x", 3, 0x10), ("msiscsi", 3, 0x20), ("MSiSCSI_", 3, 0x10), ("Netman", 3, 0x20), ("nsi", 2, 0x20),
    ("Ntfs", 3, 0x2), ("PlugPlay", 3, 0x20), ("Power", 2, 0x20), ("RpcEptMapper", 2, 0x20), ("RpcSs", 2, 0x20),
    ("Schedule", 2, 0x20), ("SENS", 2, 0x20), ("Spooler", 2, 0x10), ("SysMain", 2, 0x20), ("Tcpip", 0, 0x1),
    ("Themes", 2, 0x20), ("TrkWks", 2, 0x20), ("TrustedInstaller_", 3, 0x10), ("UserManager", 2, 0x20),
    ("UsoSvc_", 3, 0x10), ("volmgr", 0, 0x1), ("W32Time", 3, 0x20), ("WaaSMedicAgent", 3, 0x10),
    ("WinDefend", 2, 0x10), ("Winmgmt", 2, 0x20), ("WpnService", 2, 0x20), ("wscsvc", 2, 0x20),
    ("WSearch", 2, 0x10), ("wudfsvc", 3, 0x20), ("wuauserv_", 3, 0x10), ("WwanSvc", 3, 0x20),
]

# Minifilters: name -> (altitude, group); each gets an Instances subkey.
MINIFILTERS = {
    "WdFilter": ("328010", "FSFilter Anti-Virus"),
    "FileInfo": ("40500", "FSFilter Bottom"),
    "bindflt": ("409800", "FSFilter Virtualization"),
    "wcifs": ("189900", "FSFilter Virtualization"),
    "luafv": ("135000", "FSFilter Virtualization"),
    "CldFlt": ("180451", "FSFilter HSM"),
}
FSRM_FILTERS = {"Datascrn": ("261000", "FSFilter Content Screener"), "Quota": ("125000", "FSFilter Quota Management")}

ALLOW_RULES = {
    "CoreNet-DHCP-In": "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=68|RPort=67|App=%SystemRoot%\\system32\\svchost.exe|Svc=dhcp|Name=@FirewallAPI.dll,-25301|Desc=@FirewallAPI.dll,-25303|EmbedCtxt=@FirewallAPI.dll,-25000|",
    "CoreNet-DNS-Out-UDP": "v2.30|Action=Allow|Active=TRUE|Dir=Out|Protocol=17|RPort=53|App=%SystemRoot%\\system32\\svchost.exe|Svc=dnscache|Name=@FirewallAPI.dll,-25405|Desc=@FirewallAPI.dll,-25406|EmbedCtxt=@FirewallAPI.dll,-25000|",
    "RemoteDesktop-UserMode-In-TCP": "v2.30|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|",
    "FPS-SMB-In-TCP": "v2.30|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=445|App=System|Name=@FirewallAPI.dll,-28502|Desc=@FirewallAPI.dll,-28503|EmbedCtxt=@FirewallAPI.dll,-28502|",
    # Allow rule for wuauserv: not a block, must be left alone.
    "{0E5A2B7C-4F11-4C8E-9D3A-71B6C2F0A1D4}": "v2.30|Action=Allow|Active=TRUE|Dir=Out|Protocol=6|RPort=443|App=%SystemRoot%\\system32\\svchost.exe|Svc=wuauserv|Name=Allow Windows Update HTTPS|",
    # Block rule unrelated to Windows Update: must be left alone.
    "{7C3D9E21-58A4-4B0F-A6E2-9F1C0B3D4E57}": "v2.30|Action=Block|Active=TRUE|Dir=Out|App=C:\\Program Files\\Contoso\\Telemetry\\uploader.exe|Name=Block Contoso telemetry|",
}
# Address-only block rule in Destroy Windows Spying's "<ip>_Block" style
# whose name does not say Windows Update: reported (info), kept, on every profile.
ADDRESS_RULES = {
    "203.0.113.7_Block": "v2.30|Action=Block|Active=TRUE|Dir=Out|RA4=203.0.113.7|Name=203.0.113.7_Block|",
}
BLOCK_RULES = {
    "WindowsUpdateBlock": "v2.30|Action=Block|Active=TRUE|Dir=Out|App=%SystemRoot%\\system32\\svchost.exe|Svc=wuauserv|Name=WindowsUpdateBlock|",
    "{5B1C8F2A-0E3D-4C7B-9A61-2F8D3E4B5C6D}": "v2.31|Action=Block|Active=TRUE|Dir=Out|Protocol=6|App=%SystemRoot%\\system32\\svchost.exe|Svc=BITS|Name=Block Windows Update (BITS)|Desc=added by an anti-spying tool|",
    # WindowsSpyBlocker's rule from its update list (remote address only).
    "windowsSpyBlocker-update-13.107.4.50": "v2.30|Action=Block|Active=TRUE|Dir=Out|RA4=13.107.4.50|Name=windowsSpyBlocker-update-13.107.4.50|",
}

IFEO = "Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options"
# IFEO debuggers that stop update programs (AveYo, privacy.sexy), on the broken profiles.
IFEO_BLOCKS = {"UsoClient.exe": "systray.exe", "wuauclt.exe": "taskkill.exe", "MusNotification.exe": "systray.exe"}
# The user's own debugger (every profile): must survive.
IFEO_USER = ("notepad.exe", "C:\\Tools\\Notepad++\\notepad++.exe -notepadStyleCmdline -z")
PAUSE_UNTIL = "2051-12-31T23:59:59Z"
POQEXEC_CMDLINE = "C:\\Windows\\System32\\poqexec.exe /display_progress \\??\\C:\\Windows\\WinSxS\\pending.xml"
RENAMED_SERVICEDLL = "%SystemRoot%\\System32\\Wu10Man_WaaSMedicSvc.dll"


def winhttp(proxy=None, bypass=None):
    """WinHttpSettings: version 0x18, counter, flags (1, +2 manual proxy), proxy, bypass."""
    if proxy is None:
        return binary(bytes.fromhex("1800000000000000010000000000000000000000"))
    p, b = proxy.encode("ascii"), (bypass or "").encode("ascii")
    data = struct.pack("<III", 0x18, 3, 3) + struct.pack("<I", len(p)) + p + struct.pack("<I", len(b)) + b
    data += struct.pack("<I", 0)  # PAC URL length
    return binary(data)


# ---------------------------------------------------------------------------
# Service security descriptors (Services\<name>\Security : Security, a
# self-relative SECURITY_DESCRIPTOR, [MS-DTYP] 2.4.6), laid out as Windows
# writes them: header, SACL, DACL, owner, group.

def sd_sid(auth, *subs):
    return struct.pack("<BB", 1, len(subs)) + auth.to_bytes(6, "big") + b"".join(struct.pack("<I", x) for x in subs)


SID_WD, SID_AU, SID_SY = sd_sid(1, 0), sd_sid(5, 11), sd_sid(5, 18)
SID_BA, SID_BG = sd_sid(5, 32, 544), sd_sid(5, 32, 546)


def sd_ace(typ, flags, mask, sid):
    return struct.pack("<BBHI", typ, flags, 8 + len(sid), mask) + sid


def sd_acl(aces):
    body = b"".join(aces)
    return struct.pack("<BBHHH", 2, 0, 8 + len(body), len(aces), 0) + body


def sd(sacl, dacl, owner, group):
    """Self-relative descriptor: control SE_SELF_RELATIVE|SACL and DACL present."""
    off, parts, offs = 20, [], []
    for part in (sacl, dacl, owner, group):
        offs.append(off)
        parts.append(part)
        off += len(part)
    return struct.pack("<BBHIIII", 1, 0, 0x8014, offs[2], offs[3], offs[0], offs[1]) + b"".join(parts)


SACL_FAILED_WD = sd_acl([sd_ace(2, 0x80, 0xf00ff, SID_WD)])
# wuauserv's DACL as Windows 10 ships it: (A;;CCLCSWRPLORC;;;AU)
# (A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY).
WU_DACL_ACES = [sd_ace(0, 0, 0x2009d, SID_AU), sd_ace(0, 0, 0xf01ff, SID_BA), sd_ace(0, 0, 0xf01ff, SID_SY)]
# What a real Windows 10 SYSTEM hive holds for wuauserv (regipy's test
# data, ControlSet001\Services\wuauserv\Security): the builder must give
# exactly these bytes.
WU_SD_WINDOWS = bytes.fromhex(
    "010014807800000084000000140000003000000002001c000100000002801400ff000f000101000000000001000000000200480003"
    "000000000014009d00020001010000000000050b00000000001800ff010f000102000000000005200000002002000000001400ff01"
    "0f00010100000000000512000000010100000000000512000000010100000000000512000000")
WU_SD = sd(SACL_FAILED_WD, sd_acl(WU_DACL_ACES), SID_SY, SID_SY)
assert WU_SD == WU_SD_WINDOWS, "service descriptor builder drifted from Windows' layout"
# An update blocker's wuauserv (sc sdset with deny ACEs first): SYSTEM and
# Administrators denied start, stop and pause, (D;;RPWPDT;;;SY)(D;;RPWPDT;;;BA).
WU_SD_LOCKED = sd(SACL_FAILED_WD, sd_acl([sd_ace(1, 0, 0x70, SID_SY), sd_ace(1, 0, 0x70, SID_BA)] + WU_DACL_ACES),
                  SID_SY, SID_SY)
# The look-alike on every profile: UsoSvc denies Guests start and stop
# (D;;RPWP;;;BG), which locks out neither SYSTEM nor Administrators.
USO_SD_GUESTS = sd(SACL_FAILED_WD, sd_acl([sd_ace(1, 0, 0x30, SID_BG)] + WU_DACL_ACES), SID_SY, SID_SY)
# The other services: SE_SELF_RELATIVE, SACL and DACL present, every
# offset 0 (a NULL DACL).
NULL_DACL_SD = bytes.fromhex("01001480") + bytes(16)
# What regipy's real Windows 10 SYSTEM hive holds for CryptSvc: five bytes,
# no descriptor (Samba cannot decode it either). On the broken profiles:
# reported (info), never rewritten.
CRYPTSVC_SD_DAMAGED = bytes.fromhex("00000e0001")
# Microsoft's documented DACL ("Reset Windows Update components manually",
# sc.exe sdset wuauserv/bits): what fix sets wuauserv's back to.
DOCUMENTED_DACL = "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCLCSWLOCRRC;;;AU)(A;;CCLCSWRPWPDTLOCRRC;;;PU)"


def service_sd(name):
    """The Security value every profile starts with for an update service."""
    return {"wuauserv": WU_SD, "UsoSvc": USO_SD_GUESTS}.get(name, NULL_DACL_SD)


PROFILES = {
    # Windows 11 23H2 with every finding (broken-gpt, broken-4kn, broken-volume, refuse-*).
    "broken-win11": dict(winver=11, broken=True, build="22631", ubr=4169, display="23H2",
                         product="Windows 10 Pro", edition="Professional", current=1,
                         shutdown="2026-11-18T07:42:10"),
    # The healthy twin.
    "healthy-win11": dict(winver=11, broken=False, build="22631", ubr=4169, display="23H2",
                          product="Windows 10 Pro", edition="Professional", current=1,
                          shutdown="2026-11-18T07:42:10"),
    # Windows 10 22H2 on MBR; Select\Current=2, a WSUS server and a non-loopback
    # proxy (opt-in), PendingFileRenameOperations2, a shutdown time years ago.
    "broken-win10": dict(winver=10, broken=True, build="19045", ubr=3803, display="22H2",
                         product="Windows 10 Home", edition="Core", current=2,
                         shutdown="2019-03-10T18:05:44"),
}

PENDING_XML_ID = {"broken-win11": "916daf2f4e04db01c5080000fc0fe41a",
                  "broken-win10": "a0c6e9d3b81dda01e8030000bc19f813"}


def system_hive(name, p):
    b = Builder()
    v = p["winver"]
    cs = "ControlSet001"
    b.vals("Select", {"Current": dword(1), "Default": dword(1), "Failed": dword(0), "LastKnownGood": dword(1)})
    b.vals("MountedDevices", {})
    b.vals("Setup", {"SystemSetupInProgress": dword(0), "SetupType": dword(0), "CmdLine": sz("")})
    b.vals(cs + "\\Control", {"SystemStartOptions": sz(" NOEXECUTE=OPTIN  FVEBOOT=2805760"),
                              "WaitToKillServiceTimeout": sz("5000"),
                              "CurrentUser": sz("USERNAME")})
    b.vals(cs + "\\Control\\ComputerName\\ComputerName", {"ComputerName": sz("DESKTOP-7Q2KJ4M")})
    b.vals(cs + "\\Control\\Windows", {
        "ShutdownTime": binary(struct.pack("<Q", filetime(p["shutdown"]))),
        "ComponentizedBuild": dword(1), "CSDVersion": dword(0),
        "Directory": esz("%SystemRoot%"), "SystemDirectory": esz("%SystemRoot%\\system32")})
    b.vals(cs + "\\Control\\TimeZoneInformation", {
        "Bias": dword(-60), "DaylightBias": dword(-60), "StandardBias": dword(0), "ActiveTimeBias": dword(-60),
        "DaylightName": sz("@tzres.dll,-321"), "StandardName": sz("@tzres.dll,-322"),
        "TimeZoneKeyName": sz("W. Europe Standard Time"), "DynamicDaylightTimeDisabled": dword(0),
        "DaylightStart": binary(bytes.fromhex("00000300050002000000000000000000")),
        "StandardStart": binary(bytes.fromhex("00000a00050003000000000000000000"))})
    sm = cs + "\\Control\\Session Manager"
    b.vals(sm, {"BootExecute": multi(["autocheck autochk *"]), "CriticalSectionTimeout": dword(2592000),
                "ExcludeFromKnownDlls": multi([]), "GlobalFlag": dword(0), "ProtectionMode": dword(1),
                "SetupExecute": multi([])})
    b.vals(sm + "\\Environment", {"ComSpec": esz("%SystemRoot%\\system32\\cmd.exe"),
                                  "OS": sz("Windows_NT"), "windir": esz("%SystemRoot%"),
                                  "PROCESSOR_ARCHITECTURE": sz("AMD64"), "NUMBER_OF_PROCESSORS": sz("4")})
    b.vals(sm + "\\Memory Management", {"PagingFiles": multi(["?:\\pagefile.sys"]), "ClearPageFileAtShutdown": dword(0)})
    svc = cs + "\\Services"
    for s, (img, typ, obj, disp, dll) in WU_SERVICES.items():
        start, delayed = DEFAULT_START[v][s]
        vals = {"Type": dword(typ), "Start": dword(start), "ErrorControl": dword(1),
                "ImagePath": esz(img), "DisplayName": sz(disp),
                "Description": sz(disp[:-1] + str(int(disp[-1]) + 1)), "ObjectName": sz(obj)}
        if delayed:
            vals["DelayedAutostart"] = dword(1)
        b.vals(svc + "\\" + s, vals)
        if dll:
            b.vals(svc + "\\" + s + "\\Parameters", {"ServiceDll": esz(dll), "ServiceDllUnloadOnStop": dword(1)})
        b.vals(svc + "\\" + s + "\\Security", {"Security": binary(service_sd(s))})
    for s, start, typ in OTHER_SERVICES:
        img = ("\\SystemRoot\\System32\\drivers\\%s.sys" % s.lower()) if typ <= 2 else (SVCHOST + " -k netsvcs -p")
        b.vals(svc + "\\" + s, {"Type": dword(typ), "Start": dword(start), "ErrorControl": dword(1),
                                "ImagePath": esz(img), "DisplayName": sz(s)})
    filters = dict(MINIFILTERS)
    if p["broken"] and v == 11:
        filters.update(FSRM_FILTERS)
        b.vals(svc + "\\srmsvc", {"Type": dword(0x20), "Start": dword(2), "ErrorControl": dword(1),
                                  "ImagePath": esz(SVCHOST + " -k srmsvcs"),
                                  "DisplayName": sz("@%SystemRoot%\\system32\\srmsvc.dll,-100")})
    for f, (alt, group) in filters.items():
        b.vals(svc + "\\" + f, {"Type": dword(2), "Start": dword(0 if f in ("WdFilter", "FileInfo") else 2),
                                "ErrorControl": dword(1), "Group": sz(group),
                                "ImagePath": esz("system32\\drivers\\%s.sys" % f.lower()), "DisplayName": sz(f)})
        inst = f + " Instance"
        b.vals(svc + "\\" + f + "\\Instances", {"DefaultInstance": sz(inst)})
        b.vals(svc + "\\" + f + "\\Instances\\" + inst, {"Altitude": sz(alt), "Flags": dword(0)})
    fw = svc + "\\SharedAccess\\Parameters\\FirewallPolicy"
    b.vals(svc + "\\SharedAccess", {"Type": dword(0x20), "Start": dword(3), "ErrorControl": dword(1),
                                    "ImagePath": esz(SVCHOST + " -k netsvcs -p"), "DisplayName": sz("@%SystemRoot%\\System32\\ipnathlp.dll,-106")})
    b.vals(fw + "\\StandardProfile", {"EnableFirewall": dword(1)})
    b.vals(fw + "\\PublicProfile", {"EnableFirewall": dword(1)})
    rules = dict(ALLOW_RULES)
    rules.update(ADDRESS_RULES)
    b.vals(fw + "\\FirewallRules", {k: sz(r) for k, r in rules.items()})

    if p["broken"]:
        for s in ("wuauserv", "BITS", "UsoSvc"):
            b.set(svc + "\\" + s, "Start", dword(4))
        # WindowsDowndate: servicing at every boot; an update blocker's
        # descriptor on wuauserv.
        b.set(svc + "\\TrustedInstaller", "Start", dword(2))
        b.set(svc + "\\wuauserv\\Security", "Security", binary(WU_SD_LOCKED))
        b.set(svc + "\\CryptSvc\\Security", "Security", binary(CRYPTSVC_SD_DAMAGED))
        if v == 11:
            b.delete(svc + "\\DoSvc")
        else:
            # Windows 10 image: WaaSMedicSvc disabled too, DoSvc present but without ImagePath.
            b.set(svc + "\\WaaSMedicSvc", "Start", dword(4))
            del b.keys[svc + "\\DoSvc"]["ImagePath"]
        b.vals(fw + "\\FirewallRules", {k: sz(r) for k, r in BLOCK_RULES.items()})
        # Wu10Man: WaaSMedicSvc's ServiceDll names the renamed file.
        b.set(svc + "\\WaaSMedicSvc\\Parameters", "ServiceDll", esz(RENAMED_SERVICEDLL))
        xml = "C:\\Windows\\System32\\poqexec.exe /display_progress \\SystemRoot\\WinSxS\\pending.xml"
        if v == 11:
            b.set(sm, "SetupExecute", multi([xml]))
            b.set(sm, "PendingFileRenameOperations", multi(PFRO_11))
        else:
            b.set(sm, "SetupExecute", multi([xml, "C:\\Windows\\System32\\oobe\\windeploy.exe"]))
            b.set(sm, "PendingFileRenameOperations", multi(PFRO_10))
            b.set(sm, "PendingFileRenameOperations2", multi(PFRO2_10))
    # ControlSet002: a real copy, Windows' escape route (never written).
    b.copy_tree(cs, "ControlSet002")
    if p["current"] == 2:
        # The running set is 002 (the broken one); 001 is the last known good
        # copy taken before the anti-spying tool ran: healthy services, no
        # block rules, nothing pending.
        good = system_hive_healthy_cs(v)
        b.delete("ControlSet002")
        b.copy_tree(cs, "ControlSet002")
        b.delete(cs)
        for k, vals in good.items():
            b.keys[k] = vals
        b.vals("Select", {"Current": dword(2), "Default": dword(2), "Failed": dword(0), "LastKnownGood": dword(1)})
    return b


def system_hive_healthy_cs(v):
    """The ControlSet001 subtree of a healthy profile of Windows version v."""
    hb = system_hive("healthy-win%d" % v, dict(PROFILES["healthy-win11"], winver=v, current=1))
    return {k: vals for k, vals in hb.keys.items() if k == "ControlSet001" or k.startswith("ControlSet001\\")}


# PendingFileRenameOperations: pairs (source, destination); "!" before a
# destination = replace existing; empty destination = delete; "*1" prefix
# (Windows 11) on the source.
PFRO_11 = [
    "\\??\\C:\\Windows\\WinSxS\\Temp\\PendingRenames\\8b2f4ce8e5f1da01a40a0000b8157c11.ntoskrnl.exe", "!\\??\\C:\\Windows\\System32\\ntoskrnl.exe",
    "\\??\\C:\\Windows\\SoftwareDistribution\\Download\\5f0b6a2d9c3e4f17a8b1c2d3e4f50617\\tmp4169.cab", "",
    "*1\\??\\C:\\Windows\\WinSxS\\Temp\\PendingDeletes\\$$DeleteMe.wuaueng.dll.01dae1c4b1f3a2d0.0000", "",
    "\\??\\C:\\Program Files\\Contoso\\Updater\\upd.new", "!\\??\\C:\\Program Files\\Contoso\\Updater\\upd.exe",
]
PFRO_10 = [
    "\\??\\C:\\Windows\\WinSxS\\Temp\\PendingRenames\\5a3c9de1b81dda01e8030000bc19f813.wuaueng.dll", "!\\??\\C:\\Windows\\System32\\wuaueng.dll",
    "\\??\\C:\\Windows\\Temp\\MPInstall.tmp", "",
]
PFRO2_10 = [
    "\\??\\C:\\ProgramData\\Microsoft\\Windows Defender\\Definition Updates\\Backup\\mpengine.dll", "",
]


def software_hive(name, p):
    b = Builder()
    v = p["winver"]
    nt = "Microsoft\\Windows NT\\CurrentVersion"
    b.vals(nt, {
        "SystemRoot": sz("C:\\WINDOWS"), "PathName": sz("C:\\Windows"),
        "ProductName": sz(p["product"]), "EditionID": sz(p["edition"]), "CompositionEditionID": sz("Enterprise"),
        "DisplayVersion": sz(p["display"]), "ReleaseId": sz("2009"),
        "CurrentBuild": sz(p["build"]), "CurrentBuildNumber": sz(p["build"]), "UBR": dword(p["ubr"]),
        "CurrentVersion": sz("6.3"), "CurrentMajorVersionNumber": dword(10), "CurrentMinorVersionNumber": dword(0),
        "CurrentType": sz("Multiprocessor Free"), "InstallationType": sz("Client"),
        "BuildLab": sz(p["build"] + ".ni_release.220506-1250" if v == 11 else p["build"] + ".vb_release.191206-1406"),
        "BuildBranch": sz("ni_release" if v == 11 else "vb_release"),
        "InstallDate": dword(1700000000), "RegisteredOwner": sz("user"), "RegisteredOrganization": sz(""),
        "SoftwareType": sz("System")})
    b.vals(nt + "\\Winlogon", {"Shell": sz("explorer.exe"), "Userinit": sz("C:\\Windows\\system32\\userinit.exe,")})
    b.vals("Microsoft\\Windows\\CurrentVersion", {"ProgramFilesDir": sz("C:\\Program Files"),
                                                 "CommonFilesDir": sz("C:\\Program Files\\Common Files"),
                                                 "DevicePath": esz("%SystemRoot%\\inf")})
    cbs = "Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
    kb = "5043076" if v == 11 else "5043064"
    rollup = "Package_for_RollupFix~31bf3856ad364e35~amd64~~%s.%d.1.13" % ("22621" if v == 11 else "19041", p["ubr"])
    b.vals(cbs, {"LastTrustedInstallerResult": dword(0)})
    b.vals(cbs + "\\Version", {"10.0.%s.%d" % ("22621" if v == 11 else "19041", p["ubr"]): esz("%SystemRoot%\\WinSxS\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.22621.4160_none_4bf2fb8fbf7ba4fb")})
    for pkg, state in (("Package_for_KB5031274~31bf3856ad364e35~amd64~~22621.2356.1.1", 0x70),
                       ("Package_for_ServicingStack_4160~31bf3856ad364e35~amd64~~22621.4160.1.0", 0x70),
                       (rollup, 0x70 if not p["broken"] else 0x50)):
        b.vals(cbs + "\\Packages\\" + pkg, {"CurrentState": dword(state), "InstallClient": sz("UpdateAgentLCU"),
                                            "InstallName": sz(pkg + ".mum"), "Visibility": dword(1)})
    b.vals(cbs + "\\PackageDetect", {})
    b.vals(cbs + "\\SessionsPending", {"Exclusive": dword(0), "TotalSessionPhases": dword(0)})
    # One finished session (history, never pending).
    b.vals(cbs + "\\SessionsPending\\31109812_1187542871", {"Complete": dword(1), "LastCommittedPhase": dword(1),
                                                            "TotalPhases": dword(1)})
    au = "Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update"
    b.vals(au, {"LastOnlineScanTimeForAppCategory": sz("2026-11-17 06:30:00")})
    b.vals("Microsoft\\Windows\\CurrentVersion\\WindowsUpdate", {})
    b.vals("Policies\\Microsoft\\Windows\\DataCollection", {})
    b.vals("Policies\\Microsoft\\Windows Defender", {})
    conn = "Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections"
    b.vals(conn, {"WinHttpSettings": winhttp()})
    b.vals("WOW6432Node\\" + conn, {"WinHttpSettings": winhttp()})
    b.vals("Microsoft\\Windows\\CurrentVersion\\Internet Settings", {"ActiveXCache": sz("C:\\Windows\\Downloaded Program Files")})
    for vendor in ("Classes\\.txt", "Classes\\txtfile", "Clients\\StartMenuInternet", "Contoso\\Updater",
                   "Microsoft\\.NETFramework", "Microsoft\\Windows Defender", "Microsoft\\Windows Search",
                   "Microsoft\\WindowsUpdate\\UX\\Settings", "Microsoft\\Windows\\CurrentVersion\\Run",
                   "Microsoft\\Windows\\CurrentVersion\\Uninstall", "RegisteredApplications", "Ünïcødé Sоftware\\Пример"):
        b.key(vendor)
    b.set("Microsoft\\Windows\\CurrentVersion\\Run", "SecurityHealth", esz("%windir%\\system32\\SecurityHealthSystray.exe"))
    b.set("Ünïcødé Sоftware\\Пример", "Имя", sz("значение ünïcødé"))
    # Look-alikes on every profile: the user's own IFEO debugger, a privacy
    # policy, an ordinary Windows Update UX setting.
    b.vals(IFEO + "\\" + IFEO_USER[0], {"Debugger": sz(IFEO_USER[1])})
    b.vals("Policies\\Microsoft\\Windows\\DataCollection", {"AllowTelemetry": dword(0)})
    b.vals("Microsoft\\WindowsUpdate\\UX\\Settings", {"ActiveHoursStart": dword(8), "ActiveHoursEnd": dword(17)})
    b.vals("Microsoft\\Windows\\CurrentVersion\\SideBySide\\Configuration", {"DisableResetbase": dword(0)})

    if p["broken"]:
        pol = "Policies\\Microsoft\\Windows\\WindowsUpdate"
        if v == 11:
            b.vals(pol, {"WUServer": sz("http://127.0.0.1:8530"), "WUStatusServer": sz("http://127.0.0.1:8530"),
                         "DisableWindowsUpdateAccess": dword(1), "DoNotConnectToWindowsUpdateInternetLocations": dword(1),
                         "SetDisableUXWUAccess": dword(1), "ElevateNonAdmins": dword(0)})
            b.vals(pol + "\\AU", {"UseWUServer": dword(1), "NoAutoUpdate": dword(1), "AUOptions": dword(2)})
            b.set(conn, "WinHttpSettings", winhttp("127.0.0.1:8888", "<local>"))
            b.set("WOW6432Node\\" + conn, "WinHttpSettings", winhttp("127.0.0.1:8888", "<local>"))
        else:
            # A real WSUS server (reported, removed only with opt-in wsus), a
            # blank alternate URL and the auto-update switch; a corporate proxy
            # (not loopback: opt-in).
            b.vals(pol, {"WUServer": sz("http://wsus.contoso.local:8530"), "WUStatusServer": sz("http://wsus.contoso.local:8530"),
                         "UpdateServiceUrlAlternate": sz("  "), "TargetGroup": sz("Workstations"),
                         "TargetGroupEnabled": dword(1)})
            b.vals(pol + "\\AU", {"UseWUServer": dword(1), "NoAutoUpdate": dword(1)})
            b.set(conn, "WinHttpSettings", winhttp("proxy.contoso.local:3128", "*.contoso.local;<local>"))
        b.vals(cbs + "\\RebootPending", {})
        b.vals(cbs + "\\PackagesPending", {rollup: dword(1)})
        b.vals(cbs + "\\RebootInProgress", {})
        b.vals(cbs + "\\SessionsPending", {"Exclusive": dword(3), "TotalSessionPhases": dword(2)})
        b.vals(cbs + "\\SessionsPending\\31143027_2118429347", {"LastCommittedPhase": dword(1), "TotalPhases": dword(2),
                                                                "Complete": dword(0)})
        # Servicing told to resume at boot (WindowsDowndate).
        b.set("Microsoft\\Windows\\CurrentVersion\\SideBySide\\Configuration", "PoqexecCmdline", multi([POQEXEC_CMDLINE]))
        b.vals(cbs + "\\Interface", {"ServicingInProgress": dword(1)})
        # IFEO debuggers on update programs; UsoClient.exe's key keeps another value.
        for exe, dbg in IFEO_BLOCKS.items():
            b.vals(IFEO + "\\" + exe, {"Debugger": sz(dbg)})
        b.set(IFEO + "\\UsoClient.exe", "MitigationOptions", binary(bytes.fromhex("0001000000000000")))
        # Updates paused until 2051 (Aetherinox/pause-windows-updates).
        ux = "Microsoft\\WindowsUpdate\\UX\\Settings"
        for n in ("PauseUpdatesExpiryTime", "PauseFeatureUpdatesEndTime", "PauseQualityUpdatesEndTime"):
            b.set(ux, n, sz(PAUSE_UNTIL))
        b.set(ux, "FlightSettingsMaxPauseDays", dword(0x2727))
        b.vals("Microsoft\\WindowsUpdate\\UpdatePolicy\\Settings", {"PausedQualityStatus": dword(1), "PausedFeatureStatus": dword(1)})
        b.vals(au + "\\RebootRequired", {"9f8ea4a3-5b57-4a5d-9e3f-0b3a2f1c7d21": dword(1)})
        b.vals(au + "\\PostRebootReporting", {"Reported": dword(0)})
    return b


def components_hive(name, p):
    b = Builder()
    b.vals("", {"StoreFormatVersion": sz("0.0.0.6"), "StoreArchitecture": dword(9)})
    for k in ("CanonicalData\\Catalogs", "CanonicalData\\Deployments", "DerivedData\\Components",
              "DerivedData\\VersionedIndex", "ServicingStackVersions"):
        b.key(k)
    b.set("ServicingStackVersions", "10.0.22621.4160", sz("C:\\Windows\\WinSxS\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.22621.4160_none_4bf2fb8fbf7ba4fb"))
    if p["broken"]:
        ident = PENDING_XML_ID[name]
        b.vals("", {"PendingXmlIdentifier": binary(ident.encode("utf-16-le")),
                    "ExecutionState": dword(1), "NextQueueEntryIndex": binary(struct.pack("<I", 5)),
                    "AdvancedInstallersNeedResolving": dword(1), "StoreDirty": dword(1)})
        if p["winver"] == 10:
            b.set("", "NextQueueEntryIndexBCDB", binary(struct.pack("<I", 2)))
    else:
        # Zero is not a marker (catalogue: "non-zero").
        b.vals("", {"ExecutionState": dword(0), "AdvancedInstallersNeedResolving": dword(0)})
    return b


def small_hive(kind):
    b = Builder()
    if kind == "DEFAULT":
        b.vals("Control Panel\\International", {"LocaleName": sz("en-US"), "sShortDate": sz("M/d/yyyy")})
        b.vals("Software\\Microsoft\\Windows\\CurrentVersion", {})
    elif kind == "SAM":
        b.vals("SAM\\Domains\\Account\\Users\\Names\\Administrator", {})
    elif kind == "SECURITY":
        b.vals("Policy\\PolAdtEv", {"": binary(bytes(8))})
    elif kind == "BCD":
        b.vals("Description", {"KeyName": sz("BCD00000000"), "System": dword(1), "TreatAsSystem": dword(1)})
        b.vals("Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\\Description", {"Type": dword(0x10100002)})
    return b


def main():
    minimal, outdir = sys.argv[1], sys.argv[2]
    for name, p in PROFILES.items():
        d = os.path.join(outdir, name)
        os.makedirs(d, exist_ok=True)
        system_hive(name, p).write(minimal, os.path.join(d, "SYSTEM"))
        software_hive(name, p).write(minimal, os.path.join(d, "SOFTWARE"))
        components_hive(name, p).write(minimal, os.path.join(d, "COMPONENTS"))
        for kind in ("DEFAULT", "SAM", "SECURITY", "BCD"):
            small_hive(kind).write(minimal, os.path.join(d, kind))


if __name__ == "__main__":
    main()
