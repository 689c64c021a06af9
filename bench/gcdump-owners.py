#!/usr/bin/env python3
"""Bytes per connection by owner from two `dotnet-gcdump report` outputs (before and while N clients are held).

usage: gcdump-owners.py BASE_REPORT HELD_REPORT CONNECTED  [key=value ...]  -> one JSON line on stdout
The key=value pairs (numbers where they parse) are copied into the record (target, RSS figures, ...).

What the report gives: the heap total ("GC Heap bytes", exact), and per type the instance count (exact) and the
type's size ("Object Bytes": the size of one instance). For fixed-size types, size x count is exact; for arrays
and strings it is not (their instances differ in size), so their bytes are the heap difference minus every
fixed-size type's bytes, in one row "arrays and strings", with their counts per connection by owner.
"""
import json
import re
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+([\d,]+)\s+(.+?)\s+\[([^\]]+)\]\s*$")
TOTAL = re.compile(r"^\s*([\d,]+)\s+GC Heap bytes")

# owner, by a namespace found in the type name (generic arguments and async state machines included),
# else by the assembly
OWNERS = [
    ("gateway", ("Evolution.Events.Gateway",)),
    ("Socket.IO", ("Evolution.Events.SocketIO",)),
    ("Engine.IO", ("Evolution.Events.EngineIO",)),
    ("Kestrel/transport", ("Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Connections", "System.IO.Pipelines",
                           "System.Net.Sockets", "Microsoft.AspNetCore.Http", "Microsoft.AspNetCore.WebSockets",
                           "System.Net.WebSockets", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.MemoryPool")),
    ("bench ceiling", ("Hub", "RawClient", "Client", "IClient")),
]
ASSEMBLIES = [
    ("gateway", ("Evolution.Events.Gateway",)),
    ("Socket.IO", ("Evolution.Events.SocketIO",)),
    ("Engine.IO", ("Evolution.Events.EngineIO",)),
    ("Kestrel/transport", ("Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Connections", "System.IO.Pipelines",
                           "System.Net.Sockets", "Microsoft.AspNetCore.Http", "Microsoft.AspNetCore.WebSockets",
                           "System.Net.WebSockets", "Microsoft.AspNetCore.Hosting")),
    ("bench ceiling", ("Evolution.Events.Ceiling",)),
]
BCL = ("System.String", "System.Byte[]", "System.Char[]", "System.Object[]", "System.Int32[]", "Entry<", "System.Collections",
       "VolatileNode<", "Node<", "Slot<", "System.Threading.Lock", "System.Object")


def owner(tname, asm):
    for name, keys in OWNERS:
        for k in keys:
            if name == "bench ceiling":
                if re.search(r"(^|[<,\[+ ])" + re.escape(k) + r"($|[>,\]+ \[])", tname):
                    return name
            elif k in tname:
                return name
    for name, keys in ASSEMBLIES:
        if any(asm.startswith(k) for k in keys):
            return name
    if any(tname.startswith(b) for b in BCL):
        return "BCL collections/strings"
    return "other"


def is_variable(tname):
    return tname.endswith("]") or tname == "System.String"


def parse(path):
    types, total = {}, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = TOTAL.match(line)
            if m:
                total = int(m.group(1).replace(",", ""))
                continue
            m = LINE.match(line)
            if not m:
                continue
            size, count, tname, asm = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", "")), m.group(3), m.group(4)
            tname = re.sub(r"\s*\(Bytes > [\d.]+K\)$", "", tname)  # size buckets of big arrays: one type
            t = types.setdefault((tname, asm), [0, 0])
            t[0] += size * count  # exact for fixed-size types only (see above)
            t[1] += count
    return types, total


def main():
    base, base_total = parse(sys.argv[1])
    held, held_total = parse(sys.argv[2])
    n = int(sys.argv[3])
    rec = {"kind": "memory"}
    for kv in sys.argv[4:]:
        k, _, v = kv.partition("=")
        try:
            rec[k] = float(v) if "." in v else int(v)
        except ValueError:
            rec[k] = v
    rec["connected"] = n
    if n <= 0:
        rec["error"] = "no client connected"
        print(json.dumps(rec))
        return
    diff = []
    for key in set(base) | set(held):
        b = base.get(key, [0, 0])
        h = held.get(key, [0, 0])
        diff.append((key[0], key[1], h[0] - b[0], h[1] - b[1]))
    owners, fixed_total, variable = {}, 0, {}
    fixed = []
    for tname, asm, size, count in diff:
        o = owner(tname, asm)
        if is_variable(tname):
            variable[o] = variable.get(o, 0) + count
            continue
        owners[o] = owners.get(o, 0) + size
        fixed_total += size
        fixed.append((tname, asm, size, count))
    heap_diff = (held_total or 0) - (base_total or 0)
    owners["arrays and strings"] = heap_diff - fixed_total
    rec["heap_total_before"] = base_total
    rec["heap_total_held"] = held_total
    rec["heap_per_conn_bytes"] = round(heap_diff / n, 1)
    rec["owners"] = {k: round(v / n, 1) for k, v in sorted(owners.items(), key=lambda kv: -kv[1])}
    rec["array_objects_per_conn"] = {k: round(v / n, 2) for k, v in sorted(variable.items(), key=lambda kv: -kv[1]) if v > 0}
    top = sorted(fixed, key=lambda d: -d[2])[:25]
    rec["top_types"] = [{"type": t, "assembly": a, "owner": owner(t, a), "bytes_per_conn": round(s / n, 1), "objects_per_conn": round(c / n, 2)}
                        for t, a, s, c in top if s > 0]
    arrays = sorted(((t, a, c) for t, a, _, c in diff if is_variable(t)), key=lambda d: -d[2])[:12]
    rec["top_arrays"] = [{"type": t, "assembly": a, "owner": owner(t, a), "objects_per_conn": round(c / n, 2)} for t, a, c in arrays if c > 0]
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
