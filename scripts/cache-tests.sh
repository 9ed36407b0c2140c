#!/usr/bin/env bash
# Runs the public HTTP caching conformance suite (http-tests/cache-tests,
# https://cache-tests.fyi) against Edge's cache and prints the pass/fail
# counts the published tables use (determineTestResult over tests/index.mjs,
# browser_only tests skipped).
#
#   scripts/cache-tests.sh              # the edge binary: a property with cache.enabled in front of the suite's origin
#   scripts/cache-tests.sh --harness    # cache.Serve in front of a plain ReverseProxy (cache/internal/cachetestd)
#   scripts/cache-tests.sh --id TEST    # one test, with the exchanged headers
#
# The suite is the repository's head pinned by commit (the npm release 0.4.5
# lags it), a read-only copy beside the repository: ../shared/cache-tests-b55b8bd
# (see its PROVENANCE.md). It is copied to a scratch folder and its locked
# dependencies installed there with npm ci (again only when package-lock.json changes).
#
# Environment: CACHE_TESTS_SRC (the pinned suite; default $root/../shared/cache-tests-b55b8bd),
# CACHE_TESTS_DIR (the scratch folder; default ${XDG_CACHE_HOME:-~/.cache}/edge-cache-tests/<name of SRC>),
# CACHE_TESTS_MAX_FAIL (exit 1 above this many failures; default: no limit),
# CACHE_TESTS_DISK=1 (give the cache a disk tier too), CACHE_TESTS_RESULTS=FILE (keep the raw results).
# Needs: go, node and npm (Debian: nodejs npm), curl, python3.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mode=edge
test_id=""
while [ $# -gt 0 ]; do
	case "$1" in
	--harness) mode=harness ;;
	--id) test_id="$2"; shift ;;
	-h|--help) sed -n '2,21p' "$0"; exit 0 ;;
	*) echo "cache-tests.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

src=${CACHE_TESTS_SRC:-$root/../shared/cache-tests-b55b8bd}
if [ ! -f "$src/package-lock.json" ] || [ ! -d "$src/tests" ]; then
	echo "cache-tests.sh: no pinned suite at $src (set CACHE_TESTS_SRC)" >&2
	exit 2
fi
src=$(cd "$src" && pwd)
suite=${CACHE_TESTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-cache-tests/$(basename "$src")}
mkdir -p "$suite"
suite=$(cd "$suite" && pwd)
if [ "$suite" = "$src" ]; then
	echo "cache-tests.sh: CACHE_TESTS_DIR must be a scratch folder, not the pinned suite" >&2
	exit 2
fi
# Only a folder this script made is ever cleaned: it holds a marker.
if [ -n "$(ls -A "$suite")" ] && [ ! -f "$suite/.edge-cache-tests" ]; then
	echo "cache-tests.sh: $suite is not empty and not a scratch folder of this script" >&2
	exit 2
fi
touch "$suite/.edge-cache-tests"
# The suite's own files are copied afresh every run; node_modules stays
# while the lock file is the same.
rm -rf "$suite/tests" "$suite/test-engine" "$suite/package.json"
cp -R "$src/tests" "$src/test-engine" "$src/package.json" "$suite/"
chmod -R u+w "$suite/tests" "$suite/test-engine" "$suite/package.json" # the source is read-only
if [ ! -d "$suite/node_modules" ] || ! cmp -s "$src/package-lock.json" "$suite/package-lock.json"; then
	echo "installing the suite's dependencies into $suite" >&2
	rm -f "$suite/package-lock.json"
	cp "$src/package-lock.json" "$suite/package-lock.json"
	chmod u+w "$suite/package-lock.json"
	(cd "$suite" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2) || { rm -f "$suite/package-lock.json"; exit 1; }
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
(cd "$suite" && npm_config_port=$origin_port npm_config_protocol=http npm_config_pidfile="$work/server.pid" exec node test-engine/server/server.mjs) >"$work/origin.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$origin_port/package.json" # the pruned suite has no index.html

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
wait_http "http://localhost:$edge_port/package.json" || { cat "$work/edge.log" >&2; exit 1; }

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
