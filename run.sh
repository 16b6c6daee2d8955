#!/usr/bin/env bash
# Quick start: install what is missing, build, and serve Mahali on the embedded database with
# the Sierra Leone demo data. Extra arguments go to `mahali serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
"$root/scripts/bootstrap.sh" "$root/build" RelWithDebInfo
exec "$root/build/mahali" serve --demo "$@"
