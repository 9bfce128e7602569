#!/usr/bin/env python3
# testdata/e2e/registry/fake_registry.py — an adversarial OCI distribution server for the
# e2e registry tests (tests/e2e/registry_test.cpp, started through registry_util.h).
# Every repository serves the same small one-layer image, but each repository name picks one
# misbehaviour, so a test can check that `builder pull` rejects it cleanly:
#
#   good/app            the image, served correctly (control: proves the image itself is valid)
#   bad/digest          the layer blob's bytes do not match its digest (same length)
#   bad/short           the layer blob says Content-Length N, sends N/2 bytes and closes
#   bad/endless         the layer blob never ends (no Content-Length; bytes sent are recorded)
#   bad/endless-manifest  the manifest never ends (no Content-Length)
#   bad/schema1         a schema1 (signed) manifest
#   bad/layer-count     the config lists two diff_ids, the manifest one layer
#   bad/diffid          the config's diff_id is not the layer's uncompressed digest
#   bad/huge-manifest   a valid manifest larger than 4 MiB
#   bad/manifest-digest any reference, digests included, gets the good manifest: a pull by a
#                       digest that is not the manifest's must fail
#   flaky/app           every path answers 503 twice, then correctly (retries)
#   redirect/app        blobs answer 302 to a second listener on --redirect-host (another
#                       host), which records whether an Authorization header reached it
#   (any other name)    404 NAME_UNKNOWN, like a registry without that repository
#
# Options: --port-file F (the main port is written there once listening), --record F (one
# line per event: "main|redirect METHOD PATH auth=yes|no", "endless PATH BYTES"),
# --user/--password (every /v2/ request then needs that basic auth), --redirect-host H.
# Standard library only. Serves on 127.0.0.1 only.

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer():
    """A deterministic gzip'd tar with /hello.txt: (compressed bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"hello from the fake registry\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        info.mtime = 1700000000
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, compresslevel=6, mtime=0)
    return gz, sha(tar_bytes)


def make_config(diff_ids):
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["cat", "/hello.txt"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "fake registry layer"}],
    }
    return json.dumps(cfg, sort_keys=True).encode()


def make_manifest(config, layer, annotations=None):
    m = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha(layer), "size": len(layer)}],
    }
    if annotations:
        m["annotations"] = annotations
    return json.dumps(m, sort_keys=True).encode()


class Image:
    """One manifest plus its blobs (digest -> bytes)."""

    def __init__(self, manifest, media_type, blobs):
        self.manifest = manifest
        self.media_type = media_type
        self.blobs = blobs


LAYER, DIFF_ID = make_layer()
GOOD_CONFIG = make_config([DIFF_ID])
GOOD = Image(make_manifest(GOOD_CONFIG, LAYER), OCI_MANIFEST,
             {sha(GOOD_CONFIG): GOOD_CONFIG, sha(LAYER): LAYER})


def image_for(repo):
    if repo == "bad/layer-count":
        cfg = make_config([DIFF_ID, sha(b"a second layer that is not there")])
        return Image(make_manifest(cfg, LAYER), OCI_MANIFEST, {sha(cfg): cfg, sha(LAYER): LAYER})
    if repo == "bad/diffid":
        cfg = make_config([sha(b"not the layer's tar")])
        return Image(make_manifest(cfg, LAYER), OCI_MANIFEST, {sha(cfg): cfg, sha(LAYER): LAYER})
    if repo == "bad/huge-manifest":
        m = make_manifest(GOOD_CONFIG, LAYER, {"padding": "x" * (5 << 20)})
        return Image(m, OCI_MANIFEST, GOOD.blobs)
    if repo == "bad/schema1":
        m = json.dumps({
            "schemaVersion": 1, "name": repo, "tag": "1", "architecture": "amd64",
            "fsLayers": [{"blobSum": sha(LAYER)}],
            "history": [{"v1Compatibility": json.dumps({"id": "a" * 64, "os": "linux"})}],
            "signatures": [{"header": {"alg": "ES256"}, "signature": "AAAA", "protected": "e30"}],
        }, indent=3).encode()
        return Image(m, SCHEMA1, GOOD.blobs)
    return GOOD


class Server:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.hits = {}  # path -> requests seen (flaky/app)
        self.record_file = open(args.record, "a") if args.record else None
        self.redirect_port = 0

    def record(self, line):
        if self.record_file:
            with self.lock:
                self.record_file.write(line + "\n")
                self.record_file.flush()

    def count_hit(self, path):
        with self.lock:
            n = self.hits.get(path, 0) + 1
            self.hits[path] = n
            return n


REPOS = {"good/app", "bad/digest", "bad/short", "bad/endless", "bad/endless-manifest", "bad/schema1",
         "bad/layer-count", "bad/diffid", "bad/huge-manifest", "bad/manifest-digest", "flaky/app",
         "redirect/app"}

ROUTE = re.compile(r"^/v2/(.+)/(manifests|blobs)/([^/?]+)$")


def make_handler(server, role):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("%s %s\n" % (role, fmt % a))

        def send_bytes(self, status, body, ctype="application/json", extra=None, head=False):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def error(self, status, code, message, extra=None, head=False):
            body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
            self.send_bytes(status, body, extra=extra, head=head)

        def authorized(self):
            if not server.args.user:
                return True
            want = "Basic " + base64.b64encode(
                ("%s:%s" % (server.args.user, server.args.password)).encode()).decode()
            return self.headers.get("Authorization", "") == want

        def do_HEAD(self):
            self.handle_request(head=True)

        def do_GET(self):
            self.handle_request(head=False)

        def handle_request(self, head):
            auth = "yes" if self.headers.get("Authorization") else "no"
            server.record("%s %s %s auth=%s" % (role, self.command, self.path, auth))
            if role == "redirect":
                return self.serve_redirected(head)
            if not self.authorized():
                return self.error(401, "UNAUTHORIZED", "authentication required",
                                  {"WWW-Authenticate": 'Basic realm="fake-registry"'}, head)
            if self.path in ("/v2/", "/v2"):
                return self.send_bytes(200, b"{}", extra={
                    "Docker-Distribution-API-Version": "registry/2.0"}, head=head)
            t = re.match(r"^/v2/(.+)/tags/list$", self.path)
            if t and t.group(1) in REPOS:
                body = json.dumps({"name": t.group(1), "tags": ["1"]}).encode()
                return self.send_bytes(200, body, head=head)
            m = ROUTE.match(self.path)
            if not m:
                return self.error(404, "NAME_UNKNOWN", "no such route", head=head)
            repo, kind, ref = m.groups()
            if repo not in REPOS:
                return self.error(404, "NAME_UNKNOWN", "repository name not known to registry", head=head)
            if repo == "flaky/app" and server.count_hit(self.path) <= 2:
                return self.error(503, "UNAVAILABLE", "try again", head=head)
            img = image_for(repo)
            if kind == "manifests":
                return self.serve_manifest(repo, ref, img, head)
            return self.serve_blob(repo, ref, img, head)

        def serve_manifest(self, repo, ref, img, head):
            digest = sha(img.manifest)
            if ref.startswith("sha256:") and ref != digest and repo != "bad/manifest-digest":
                return self.error(404, "MANIFEST_UNKNOWN", "unknown manifest", head=head)
            hdrs = {"Docker-Content-Digest": digest}
            if repo == "bad/endless-manifest":
                return self.endless(img.media_type, head)
            return self.send_bytes(200, img.manifest, img.media_type, hdrs, head)

        def serve_blob(self, repo, digest, img, head):
            data = img.blobs.get(digest)
            if data is None:
                return self.error(404, "BLOB_UNKNOWN", "unknown blob", head=head)
            hdrs = {"Docker-Content-Digest": digest}
            is_layer = digest == sha(LAYER)
            if repo == "redirect/app":
                host = server.args.redirect_host
                self.send_response(302)
                self.send_header("Location", "http://%s:%d/storage/%s" % (host, server.redirect_port, digest))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if repo == "bad/digest" and is_layer:
                flipped = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
                return self.send_bytes(200, flipped, "application/octet-stream", hdrs, head)
            if repo == "bad/short" and is_layer and not head:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if repo == "bad/endless" and is_layer:
                return self.endless("application/octet-stream", head)
            return self.send_bytes(200, data, "application/octet-stream", hdrs, head)

        def endless(self, ctype, head):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if head:
                return
            chunk = b"{" + b" " * 65535
            sent = 0
            try:
                # Bounded so a client that never stops cannot keep the test running forever;
                # the test asserts that far fewer bytes than this were sent.
                while sent < (1 << 30):
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            server.record("endless %s %d" % (self.path, sent))

        def serve_redirected(self, head):
            m = re.match(r"^/storage/(sha256:[0-9a-f]{64})$", self.path)
            data = GOOD.blobs.get(m.group(1)) if m else None
            if data is None:
                return self.error(404, "BLOB_UNKNOWN", "unknown blob", head=head)
            return self.send_bytes(200, data, "application/octet-stream", head=head)

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--record")
    p.add_argument("--user")
    p.add_argument("--password", default="")
    p.add_argument("--redirect-host", default="127.0.0.2")
    args = p.parse_args()

    server = Server(args)
    ThreadingHTTPServer.daemon_threads = True
    redirect = ThreadingHTTPServer((args.redirect_host, 0), make_handler(server, "redirect"))
    server.redirect_port = redirect.server_address[1]
    main_srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(server, "main"))
    threading.Thread(target=redirect.serve_forever, daemon=True).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % main_srv.server_address[1])
    os.rename(tmp, args.port_file)
    main_srv.serve_forever()


if __name__ == "__main__":
    main()
