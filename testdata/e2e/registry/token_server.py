#!/usr/bin/python3
# testdata/e2e/registry/token_server.py — a minimal Docker registry token server (the
# "Bearer realm=..." side of distribution's token auth) for the e2e registry tests.
# Started by tests/e2e/registry_util.h with a key and a self-signed certificate made by
# `openssl req -x509` at test time; docker-registry trusts that certificate through its
# `auth.token.rootcertbundle`, and each token carries it in the JWS `x5c` header, which is
# how distribution v2.8 finds the signing key (it checks the chain against the bundle).
#
#   GET  /token?service=S&scope=repository:NAME:pull,push[&scope=...]   (basic auth optional)
#   POST /token  (OAuth2 form: grant_type=password, username, password, service, scope)
#
# Valid credentials get every action they ask for; no credentials get a token with no access
# (the registry then answers 401, like a private repository); wrong credentials get 401.
# Needs Debian's python3-jwt and python3-cryptography. Every request is appended to --log as
# "METHOD user=U|- scope=S status=N" so a test can see that the token path was used.

import argparse
import base64
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def parse_scope(scope):
    """'repository:x/app:pull,push' -> {'type', 'name', 'actions'}; the name may hold ':' (ports)."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--log")
    args = p.parse_args()

    with open(args.key, "rb") as f:
        key_pem = f.read()
    with open(args.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    lock = threading.Lock()

    def log(line):
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write(line + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("token %s\n" % (fmt % a))

        def reply(self, status, obj, extra=None):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def basic_user(self):
            """(user, password) from the Authorization header, or None."""
            h = self.headers.get("Authorization", "")
            if not h.startswith("Basic "):
                return None
            try:
                user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
            except Exception:
                return ("", "")
            return (user, pw)

        def issue(self, creds, service, scopes):
            user = creds[0] if creds else "-"
            scope_text = " ".join(scopes) or "-"
            if creds is not None and creds != (args.user, args.password):
                log("%s user=%s scope=%s status=401" % (self.command, user, scope_text))
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                  {"WWW-Authenticate": 'Basic realm="token-server"'})
            access = []
            if creds is not None:
                for s in scopes:
                    parsed = parse_scope(s)
                    if parsed:
                        access.append(parsed)
            now = int(time.time())
            claims = {
                "iss": args.issuer,
                "sub": creds[0] if creds else "",
                "aud": service,
                "exp": now + 600,
                "nbf": now - 30,
                "iat": now,
                "jti": uuid.uuid4().hex,
                "access": access,
            }
            token = jwt.encode(claims, key_pem, algorithm="RS256", headers={"x5c": x5c})
            log("%s user=%s scope=%s status=200" % (self.command, user, scope_text))
            self.reply(200, {"token": token, "access_token": token, "expires_in": 600,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

        def do_GET(self):
            u = urlparse(self.path)
            if u.path != "/token":
                return self.reply(404, {"error": "not found"})
            q = parse_qs(u.query)
            scopes = []
            for s in q.get("scope", []):
                scopes.extend(s.split(" "))
            self.issue(self.basic_user(), q.get("service", [""])[0], [s for s in scopes if s])

        def do_POST(self):
            u = urlparse(self.path)
            n = int(self.headers.get("Content-Length", "0") or 0)
            form = parse_qs(self.rfile.read(n).decode())
            if u.path != "/token":
                return self.reply(404, {"error": "not found"})
            if form.get("grant_type", [""])[0] != "password":
                return self.reply(400, {"error": "unsupported_grant_type"})
            creds = (form.get("username", [""])[0], form.get("password", [""])[0])
            scopes = " ".join(form.get("scope", [])).split(" ")
            self.issue(creds, form.get("service", [""])[0], [s for s in scopes if s])

    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
