#!/usr/bin/env python3
# testdata/e2e/sources/serve.py — the HTTP server of tests/e2e/sources_test.cpp, on
# 127.0.0.1 at a free port (written to PORTFILE once listening):
#   /files/NAME      a file of ROOT/files, with an ETag (its sha256) and Last-Modified;
#                    If-None-Match with that ETag gets a 304
#   /redirect/NAME   302 to /files/NAME;  /loop  302 to itself, forever
#   /git/...         Git's smart HTTP protocol: `git http-backend` as a CGI over the bare
#                    repositories in ROOT/git
# Each request is appended to LOGFILE as "METHOD PATH STATUS".
import hashlib, os, subprocess, sys, threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, PORTFILE, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]
log_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def note(self, status):
        with log_lock, open(LOGFILE, "a") as f:
            f.write("%s %s %d\n" % (self.command, self.path, status))

    def plain(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.note(status)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/git/"):
            return self.git()
        if path == "/loop":
            return self.plain(302, headers=[("Location", "/loop")])
        if path.startswith("/redirect/"):
            return self.plain(302, headers=[("Location", "/files/" + path[len("/redirect/"):])])
        if path.startswith("/files/"):
            name = path[len("/files/"):]
            full = os.path.join(ROOT, "files", name)
            if "/" in name or not os.path.isfile(full):
                return self.plain(404, b"not found\n")
            data = open(full, "rb").read()
            etag = '"' + hashlib.sha256(data).hexdigest() + '"'
            st = os.stat(full)
            headers = [("ETag", etag), ("Last-Modified", formatdate(st.st_mtime, usegmt=True))]
            if self.headers.get("If-None-Match") == etag:
                return self.plain(304, headers=headers)
            return self.plain(200, data, headers + [("Content-Type", "application/octet-stream")])
        return self.plain(404, b"not found\n")

    def do_POST(self):
        if self.path.startswith("/git/"):
            return self.git()
        return self.plain(405)

    def git(self):
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": os.path.join(ROOT, "git"),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path[len("/git"):],
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": "127.0.0.1",
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        body = b""
        if self.command == "POST":
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            env["CONTENT_LENGTH"] = str(len(body))
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers.append((k, v.strip()))
        self.plain(status, payload, headers)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
server.serve_forever()
