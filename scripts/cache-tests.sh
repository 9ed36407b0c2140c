#!/usr/bin/env bash
# Runs the public HTTP caching conformance suite (npm package http-cache-tests,
# https://cache-tests.fyi) against Edge's cache and prints the pass/fail
# counts the published tables use (determineTestResult over tests/index.mjs,
# browser_only tests skipped).
#
#   scripts/cache-tests.sh              # the edge binary: a property with cache.enabled in front of the suite's origin
#   scripts/cache-tests.sh --harness    # cache.Serve in front of a plain ReverseProxy (cache/internal/cachetestd)
#   scripts/cache-tests.sh --id TEST    # one test, with the exchanged headers
#
# Environment: CACHE_TESTS_DIR (where the npm package is installed; default
# ${XDG_CACHE_HOME:-~/.cache}/edge-cache-tests), CACHE_TESTS_VERSION (0.4.5),
# CACHE_TESTS_MAX_FAIL (exit 1 above this many failures; default: no limit),
# CACHE_TESTS_DISK=1 (give the cache a disk tier too), CACHE_TESTS_RESULTS=FILE (keep the raw results).
# Needs: go, node and npm (Debian: nodejs npm), curl.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=edge
test_id=""
while [ $# -gt 0 ]; do
	case "$1" in
	--harness) mode=harness ;;
	--id) test_id="$2"; shift ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "cache-tests.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

pkgdir=${CACHE_TESTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-cache-tests}
version=${CACHE_TESTS_VERSION:-0.4.5}
suite="$pkgdir/node_modules/http-cache-tests"
if [ ! -f "$suite/package.json" ] || ! grep -q "\"version\": \"$version\"" "$suite/package.json"; then
	mkdir -p "$pkgdir"
	echo "installing http-cache-tests@$version into $pkgdir" >&2
	(cd "$pkgdir" && npm install --no-audit --no-fund "http-cache-tests@$version" >&2)
fi

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "cache-tests.sh: $1 did not answer" >&2
	return 1
}

origin_port=$(free_port)
edge_port=$(free_port)
# server.mjs reads its port, protocol and pid file from npm's environment.
(cd "$suite" && npm_config_port=$origin_port npm_config_protocol=http npm_config_pidfile="$work/server.pid" exec node server/server.mjs) >"$work/origin.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$origin_port/"

if [ "$mode" = harness ]; then
	go build -o "$work/cachetestd" "$root/cache/internal/cachetestd"
	args=(-listen "127.0.0.1:$edge_port" -origin "http://127.0.0.1:$origin_port")
	[ "${CACHE_TESTS_DISK:-0}" = 1 ] && args+=(-dir "$work/cache")
	"$work/cachetestd" "${args[@]}" >"$work/edge.log" 2>&1 &
	pids+=($!)
else
	go build -o "$work/edge" "$root"
	admin_port=$(free_port)
	https_port=$(free_port)
	mkdir -p "$work/properties" "$work/data"
	disk=0
	[ "${CACHE_TESTS_DISK:-0}" = 1 ] && disk=256MiB
	cat >"$work/config.yaml" <<YAML
listen: {http: "127.0.0.1:$edge_port", https: "127.0.0.1:$https_port", admin: "127.0.0.1:$admin_port"}
data_dir: $work/data
properties_dir: $work/properties
renewal: {enabled: false}
preflight: {enabled: false}
log: {level: warn, format: console, access: false}
cache: {memory_size: 64MiB, disk_size: $disk, dir: $work/cache}
YAML
	cat >"$work/properties/conformance.yaml" <<YAML
hostnames: [localhost]
origins: [{url: "http://127.0.0.1:$origin_port"}]
cache: {enabled: true}
YAML
	"$work/edge" serve --config "$work/config.yaml" >"$work/edge.log" 2>&1 &
	pids+=($!)
	wait_http "http://127.0.0.1:$admin_port/readyz"
fi
wait_http "http://localhost:$edge_port/" || { cat "$work/edge.log" >&2; exit 1; }

cd "$suite"
if [ -n "$test_id" ]; then
	npm run --silent cli --base="http://localhost:$edge_port" --id="$test_id"
	exit 0
fi
npm run --silent cli --base="http://localhost:$edge_port" >"$work/results.json"
cp "$work/results.json" "${CACHE_TESTS_RESULTS:-/dev/null}" 2>/dev/null || true
node "$root/scripts/cache-tests-count.mjs" "$suite" "$work/results.json" | tee "$work/counts.txt"
fails=$(head -1 "$work/counts.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("fail",0))')
if [ -n "${CACHE_TESTS_MAX_FAIL:-}" ] && [ "$fails" -gt "$CACHE_TESTS_MAX_FAIL" ]; then
	echo "cache-tests.sh: $fails failures, more than $CACHE_TESTS_MAX_FAIL" >&2
	exit 1
fi
