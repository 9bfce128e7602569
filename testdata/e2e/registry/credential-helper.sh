#!/bin/sh
# A docker credential helper for tests (the docker-credential-helpers protocol: `get` and
# `erase` read the server address on stdin, `store` reads {"ServerURL","Username","Secret"}).
# Tests copy it to <dir>/docker-credential-<name> and put <dir> first in PATH. Each name
# keeps its credentials in files under <dir>/store-<name>/, one per server, and logs its
# calls in <dir>/store-<name>/calls.log. Names ending in -broken fail every action,
# -hang never answers (its pid in hang.pid), -garbage answers something that is not JSON.
set -eu
name=$(basename "$0")
name=${name#docker-credential-}
dir="$(dirname "$0")/store-$name"
mkdir -p "$dir"
action=${1:-}
echo "$action" >> "$dir/calls.log"
case "$name" in
  *-broken) echo "the keychain is locked" >&2; echo "helper failure: the keychain is locked"; exit 3 ;;
  *-hang) echo $$ > "$dir/hang.pid"; exec sleep 300 ;;
  *-garbage) cat > /dev/null; echo "this is not json"; exit 0 ;;
esac
key() { printf %s "$1" | tr -c 'A-Za-z0-9.-' '_'; }
case "$action" in
  get)
    server=$(cat)
    f="$dir/$(key "$server")"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    json=$(cat)
    server=$(printf %s "$json" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    [ -n "$server" ] || { echo "no ServerURL in the input"; exit 1; }
    printf %s "$json" > "$dir/$(key "$server")" ;;
  erase)
    server=$(cat)
    f="$dir/$(key "$server")"
    if [ -f "$f" ]; then rm -f "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action: $action"; exit 1 ;;
esac
