#!/bin/sh
# Like the official image: listen on every interface without protected mode (the container
# network is the boundary), keep files in the working directory (/data). Options given
# after `redis-server` come later and win.
set -e
if [ "${1:-}" = redis-server ]; then
    shift
    exec redis-server --bind '* -::*' --protected-mode no --dir /data "$@"
fi
exec "$@"
