#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub's file API on 127.0.0.1 (test-only, standard library).

  fake_hub.py --root DIR --repo ORG/NAME --log LOG [--drop-after N] [--corrupt FILE]

Serves the files in DIR as repository ORG/NAME, revision main, the way the hub does:
  GET /api/models/ORG/NAME/tree/main   JSON listing; *.safetensors, *.gguf as LFS files (lfs.oid = SHA-256),
                                       others as git files (oid = git blob SHA-1)
  GET /ORG/NAME/resolve/main/FILE      302 redirect to /cdn/FILE (the hub redirects to its CDN)
  GET /cdn/FILE                        the bytes, honouring "Range: bytes=N-" with 206
--drop-after N  the first /cdn/ response for a .safetensors file closes the connection after
                N bytes (an interrupted download)
--corrupt FILE  serves FILE with its last byte flipped (same size, wrong checksum)
Prints the port on stdout, then logs "<path> range=<Range header>" per request to LOG.
"""
import argparse
import hashlib
import http.server
import json
import os
import sys


def listing(root):
    out = []
    for name in sorted(os.listdir(root)):
        data = open(os.path.join(root, name), "rb").read()
        entry = {"type": "file", "path": name, "size": len(data),
                 "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
        if name.endswith((".safetensors", ".gguf")):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                            "pointerSize": 135}
        out.append(entry)
    return json.dumps(out).encode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--repo", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--drop-after", type=int, default=-1)
    p.add_argument("--corrupt", default="")
    args = p.parse_args()
    state = {"dropped": False}
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            log.write(f"{self.path} range={self.headers.get('Range')}\n")
            api = f"/api/models/{args.repo}/tree/main"
            resolve = f"/{args.repo}/resolve/main/"
            if self.path == api:
                return self.send(200, listing(args.root), [("Content-Type", "application/json")])
            if self.path.startswith(resolve):
                name = self.path[len(resolve):]
                return self.send(302, b"", [("Location", f"/cdn/{name}")])
            if self.path.startswith("/cdn/"):
                return self.serve_file(self.path[len("/cdn/"):])
            self.send(404, b'{"error": "Repository not found"}')

        def serve_file(self, name):
            path = os.path.join(args.root, name)
            if "/" in name or not os.path.isfile(path):
                return self.send(404, b"not found")
            data = bytearray(open(path, "rb").read())
            if name == args.corrupt:
                data[-1] ^= 0xFF
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[len("bytes="):-1])
            status = 206 if start > 0 else 200
            body = bytes(data[start:])
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if (args.drop_after >= 0 and name.endswith(".safetensors")
                    and not state["dropped"]):
                state["dropped"] = True
                self.wfile.write(body[:args.drop_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
