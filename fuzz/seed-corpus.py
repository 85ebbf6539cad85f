#!/usr/bin/env python3
"""Builds fuzz/corpus/<target>/ seeds from spec/examples transcripts and the wire snapshots.

Client lines seed decode_request, server lines seed decode_reply/decode_entry/decode_frame/
decode_hello, whole client and server streams seed split_stream and payload, client
streams seed server_session, and server streams (after an operation octet) seed client.
The lines of the transcripts of the tree extension (`@server tree`, greeting ending with
` ext=tree`) seed decode_tree as well.
"""
import hashlib, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "spec", "examples")

def unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                out.append(int(s[i + 2:i + 4], 16)); i += 4; continue
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}[n]; i += 2; continue
        out += c.encode(); i += 1
    return bytes(out)

def put(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

for name in sorted(os.listdir(EXAMPLES)):
    if not name.endswith(".txt"):
        continue
    streams = {"C": bytearray(), "S": bytearray()}
    lines = open(os.path.join(EXAMPLES, name), encoding="utf-8").read().splitlines()
    tree = any(l.startswith("@server") and "tree" in l.split()[1:] for l in lines)
    for line in lines:
        m = re.match(r"^([CS])(: |> )(.*)$", line) or re.match(r"^([CS])(:)()$", line)
        if not m:
            continue
        side, kind, text = m.groups()
        data = text.encode() + b"\n" if kind.startswith(":") else unescape(text)
        streams[side] += data
        if kind.startswith(":"):
            if side == "C":
                put("decode_request", data)
            else:
                for t in ("decode_reply", "decode_entry", "decode_frame", "decode_hello"):
                    put(t, data)
            if tree:
                put("decode_tree", data)
    for side, data in streams.items():
        put("split_stream", bytes(data))
        put("payload", bytes(data))
    put("server_session", bytes(streams["C"]))
    for op in (0, 1, 2, 3):
        put("client", bytes([op]) + bytes(streams["S"]))
print("corpus written to", os.path.join(HERE, "corpus"))

# tls_trust: known_hosts files and fingerprints (spec section 15.3, 15.4).
EMPTY = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
for seed in [
    EMPTY,
    "localhost:7451 " + EMPTY + "\n",
    "# ferry\n\n[::1]:7451 " + EMPTY + "\r\nfiles.example:7451 " + EMPTY,
    "h:1 " + EMPTY + "\nh:1 SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
]:
    put("tls_trust", seed.encode())

# decode_auth: the auth extension's lines (spec section 16).
for seed in [
    "auth ed25519 alice " + "A" * 43 + "= " + "A" * 86 + "==\n",
    "auth scram-sha-256-plus cD1mZXJyeS1leHBvcnRlciwsbj1hbGljZSxyPWFiYw==\n",
    "auth-final Yz1jRDFtWlhKeWVTMWxlSEJ2Y25SbGNpd3M=\r\n",
    "auth kerberos alice\n",
    "more cj1hYmMscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==\n",
    "ok auth alice\n",
    "ok auth alice dj0xMjM=\n",
]:
    put("decode_auth", seed.encode())

# server_session: a whole session of the tree extension besides its transcripts (37-tree,
# 38-tree-errors, seeded above): nested folders made, filled, renamed and removed again.
HELLO_DIGEST = "xxh3-128:b5e9c1ad071b3e7fc779cfaa5e523818"
put("server_session", (
    "enable tree\nmkdir docs\nmkdir docs/2025\n"
    "put 5 new now docs/2025/notes.txt\ndata 5\nhelloend " + HELLO_DIGEST + "\n"
    "rename 9 docs/2025 docs/2026\nlist digests,recursive .\nget 0 docs/2026/notes.txt\n"
    "delete docs/2026/notes.txt\nrmdir docs/2026\nrmdir docs\nclose\n"
).encode())

# client, op 3 (a recursive list): a greeting with the tree extension and listings.
TREE_GREETING = (
    "ferry/1 max-line=4096 max-name=255 max-size=1099511627776 max-chunk=1048576 "
    "max-eager=1048576 idle=300 stall=60 min-rate=1024 ext=tree\n"
)
for listing in [
    "ok list 3\nd - 2026-11-24T19:22:08Z - a\n"
    "f 5 2026-11-24T19:22:08Z " + HELLO_DIGEST + " a/hello.txt\nf 0 2026-11-24T19:22:08Z - b\n",
    "ok list 2\nf 1 2026-11-24T19:22:08Z - b\nf 1 2026-11-24T19:22:08Z - a\n",
    "ok list 2\nd - 2026-11-24T19:22:08Z - a\nd - 2026-11-24T19:22:08Z - a\n",
    "ok list 1\nf 1 2026-11-24T19:22:08Z - a/../../x\n",
    "err 511 not-found\n",
]:
    put("client", bytes([3]) + (TREE_GREETING + listing).encode())

# decode_tree: the tree extension's lines (spec section 17), valid and near misses.
for seed in [
    "enable tree\n",
    "list - .\n",
    "list digests,recursive a/b\r\n",
    "list recursive,digests 射频\n",
    "mkdir a/b c\n",
    "rmdir a/b\n",
    "delete a/b/c.txt\n",
    "rename 5 a/b c d/e\n",
    "rename 3 a b\n",
    "get 0 a/b\n",
    "put 5 new now a/hello.txt\n",
    "put 5 replace wait a/../b\n",
    "mkdir a//b\n",
    "ok enable tree\n",
    "ok list 2\n",
    "ok mkdir\n",
    "ok rename\n",
    "d - 2026-11-24T19:22:08Z - a\n",
    "f 5 2026-11-24T19:22:08Z xxh3-128:b5e9c1ad071b3e7fc779cfaa5e523818 a/hello.txt\n",
    "f 0 2026-11-24T19:22:08Z - a/.hidden\n",
]:
    put("decode_tree", seed.encode())
