#!/usr/bin/env bash
# Real FerretDB (MongoDB wire protocol, SQLite backend) and Apache Kafka (KRaft) on loopback, for the
# integration tests and for trying the platform against "production-shaped" services without Docker;
# and, on demand, a private PostgreSQL cluster (Debian's postgresql binaries) as FerretDB's other backend.
#
#   scripts/services.sh install [ferretdb|kafka|postgresql|seaweedfs|chromium]   build/fetch into the cache
#                                  (idempotent; `install` alone also builds SeaweedFS and installs Debian's chromium)
#   scripts/services.sh install --seaweedfs-in-background   as `install`, but SeaweedFS's long cold build runs
#                                  detached at low priority (log: seaweedfs-install.log in the cache); `up
#                                  seaweedfs` waits for it. `make test` uses this: the build overlaps the tests
#   scripts/services.sh up      [ferretdb|kafka|postgresql|seaweedfs]   start on free 127.0.0.1 ports, wait until ready
#   scripts/services.sh down    [ferretdb|kafka|postgresql|seaweedfs]   stop (idempotent)
#   scripts/services.sh status  [ferretdb|kafka|postgresql|seaweedfs]   exit 0 when every named one runs and answers
#   scripts/services.sh env                        print `export ...` lines for the running services
#   scripts/services.sh clean                      down + remove the run directory (data, logs)
#
# Everything lives under ${HIVE_SERVICES_DIR:-$HOME/.cache/hive-services}:
#   ferretdb/<tag>/ferretdb          the FerretDB binary
#   kafka/<version>/libs/*.jar        kafka_2.13 + runtime deps + slf4j-simple (from scripts/kafka/pom.xml)
#   seaweedfs/<version>/weed          SeaweedFS (S3-compatible object store, Apache-2.0), built from its Go module
#   run/                              pid files, logs, data, and `env` (override with HIVE_SERVICES_RUN_DIR)
# `up` writes run/env:
#   HIVE_TEST_MONGODB_URI=mongodb://127.0.0.1:PORT/
#   HIVE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:PORT                            (PLAINTEXT; the same broker's secured
#   listeners: HIVE_TEST_KAFKA_SASL_SSL_BOOTSTRAP (SCRAM-SHA-512, PLAIN), HIVE_TEST_KAFKA_SSL_BOOTSTRAP (a client
#   certificate required), HIVE_TEST_KAFKA_TLS_DIR (ca.crt, client.crt, client.key, from openssl on every
#   start), HIVE_TEST_KAFKA_USER and HIVE_TEST_KAFKA_PASSWORD: a test account)
#   HIVE_TEST_POSTGRES_URL=postgresql://hive@127.0.0.1:PORT/hive        (after `up postgresql`)
#   HIVE_TEST_S3_ENDPOINT=http://127.0.0.1:PORT                         (after `up seaweedfs`; with
#   HIVE_TEST_S3_FILER=127.0.0.1:PORT.GRPC and HIVE_TEST_SEAWEEDFS_BIN, for a test's own `weed s3` with credentials)
# SeaweedFS (`weed server -s3`: master, volume, filer and S3 gateway) starts with empty data on every `up`
# and accepts anonymous requests: a test store, never a real one. `go install ...weed@version` is refused
# (its go.mod has a replace directive), so install builds it as the main module, like FerretDB: 21 min
# cold the last time on 2 shared cores, then cached. HIVE_SEAWEEDFS_VERSION overrides the module version, HIVE_SEAWEEDFS_S3_PORT the port.
# FerretDB keeps its SQLite files in run/ferretdb-data between runs; Kafka is a throw-away single node
# (broker + controller) whose storage is formatted afresh on every start. PostgreSQL keeps its cluster
# in run/postgresql (as root: a /tmp/hive-postgresql.* directory named in run/postgresql.dir) with
# trust auth, loopback only and fsync off: a test cluster, never a real one.
# HIVE_FERRETDB_HANDLER=postgresql starts FerretDB on that cluster (database `ferretdb`) instead of
# SQLite: FerretDB 1.x pushes top-level equality filters down to PostgreSQL, not to SQLite.
#
# Needs: go (>= 1.24) for FerretDB, java (>= 17) + mvn + openssl for Kafka, python3 for port picking and probes,
# Debian's postgresql package (initdb, pg_ctl; HIVE_POSTGRES_BIN overrides the directory) for PostgreSQL.
# PostgreSQL refuses to run as root: as root the cluster is owned by and run as the `postgres` user.
# Versions: HIVE_FERRETDB_VERSION (default v1.24.2, the last 1.x tag), HIVE_KAFKA_VERSION (default 4.2.0).
# Fixed ports instead of free ones: HIVE_FERRETDB_PORT, HIVE_KAFKA_PORT, HIVE_KAFKA_CONTROLLER_PORT.
# HIVE_SERVICES_WATCH_PID=PID: services started by this `up` stop by themselves once PID has exited.
#
# Why FerretDB is not built with a plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@TAG`:
#  * `go install pkg@version` looks up the module's version list to report deprecations, and the module
#    proxy reachable here refuses that list for FerretDB (403), so it fails before building;
#  * a binary built from the module zip panics at start-up ("Invalid build/version/version.txt"): the
#    release process generates that file and it is not in the module.
# So install downloads the tagged module with `go mod download`, copies it, writes
# build/version/version.txt = TAG, and runs `go build ./cmd/ferretdb` inside it (its own go.mod/go.sum).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${HIVE_SERVICES_DIR:-$HOME/.cache/hive-services}"
RUN="${HIVE_SERVICES_RUN_DIR:-$DIR/run}"
FERRETDB_VERSION="${HIVE_FERRETDB_VERSION:-v1.24.2}"
KAFKA_VERSION="${HIVE_KAFKA_VERSION:-4.2.0}"
SEAWEEDFS_VERSION="${HIVE_SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
SEAWEEDFS_HOME="$DIR/seaweedfs/$SEAWEEDFS_VERSION"
SEAWEEDFS_BIN="$SEAWEEDFS_HOME/weed"
SEAWEEDFS_READY_S="${HIVE_SEAWEEDFS_READY_S:-60}"
FERRETDB_BIN="$DIR/ferretdb/$FERRETDB_VERSION/ferretdb"
KAFKA_HOME="$DIR/kafka/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
PY="${HIVE_SERVICES_PYTHON:-python3}"
PROBE="$HERE/services_probe.py"
FERRETDB_READY_S="${HIVE_FERRETDB_READY_S:-30}"
KAFKA_READY_S="${HIVE_KAFKA_READY_S:-120}"
KAFKA_HEAP="${HIVE_KAFKA_HEAP:--Xms128m -Xmx512m}"
FERRETDB_HANDLER="${HIVE_FERRETDB_HANDLER:-sqlite}"
POSTGRES_READY_S="${HIVE_POSTGRES_READY_S:-60}"

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

with_lock() {  # with_lock LOCKFILE cmd...: serialize concurrent install/up/down on the same directory
    local lock="$1" lockfd; shift  # lockfd local: up_seaweedfs nests the install lock inside the run lock
    mkdir -p "$(dirname "$lock")"
    if command -v flock >/dev/null 2>&1; then
        exec {lockfd}>"$lock"
        flock "$lockfd"
        "$@"
        local rc=$?
        flock -u "$lockfd"
        exec {lockfd}>&-
        return $rc
    fi
    "$@"
}

services_from_args() {
    case "${1:-all}" in
        all|"") echo "ferretdb kafka" ;;
        ferretdb|mongo|mongodb) echo ferretdb ;;
        kafka) echo kafka ;;
        postgresql|postgres) echo postgresql ;;
        chromium) echo chromium ;;
        seaweedfs|s3) echo seaweedfs ;;
        *) die "unknown service '$1' (ferretdb | kafka | postgresql | seaweedfs | chromium)" ;;
    esac
}

# --------------------------------------------------------------------------------------- install
ferretdb_installed() {
    [[ -x "$FERRETDB_BIN" ]] || return 1
    local out
    out="$("$FERRETDB_BIN" --version 2>/dev/null)" || return 1
    grep -qx "version: $FERRETDB_VERSION" <<< "$out"
}

install_ferretdb() {
    if ferretdb_installed; then
        log "ferretdb $FERRETDB_VERSION: cached at $FERRETDB_BIN"
        return 0
    fi
    need go "install Go >= 1.24 to build FerretDB"
    need "$PY" "python3 is used to read go's JSON output"
    local t0=$SECONDS dest="$DIR/ferretdb/$FERRETDB_VERSION"
    log "ferretdb $FERRETDB_VERSION: downloading the Go module"
    local json srcdir
    json="$(cd "$DIR" && GO111MODULE=on GOWORK=off GOFLAGS= go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION")" \
        || die "go mod download github.com/FerretDB/FerretDB@$FERRETDB_VERSION failed"
    srcdir="$(printf '%s' "$json" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir",""))')"
    [[ -d "$srcdir" ]] || die "go mod download gave no source directory: $json"
    local build="$dest/src.$$"
    rm -rf "$build"; mkdir -p "$dest"
    cp -R "$srcdir" "$build"
    chmod -R u+w "$build"
    printf '%s\n' "$FERRETDB_VERSION" > "$build/build/version/version.txt"
    printf 'go-module\n' > "$build/build/version/package.txt"
    log "ferretdb $FERRETDB_VERSION: building (CGO off, pure-Go SQLite)"
    ( cd "$build" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
        go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb ) || { rm -rf "$build"; die "building ferretdb failed"; }
    mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
    rm -rf "$build"
    ferretdb_installed || die "built $FERRETDB_BIN but it does not report version $FERRETDB_VERSION"
    log "ferretdb $FERRETDB_VERSION: installed in $((SECONDS - t0))s"
}

kafka_stamp() {  # what the cached libs were made from: the pom and the version
    { cat "$HERE/kafka/pom.xml"; echo "$KAFKA_VERSION"; } | cksum | cut -d' ' -f1
}

kafka_installed() {
    [[ -f "$KAFKA_HOME/.installed" && "$(cat "$KAFKA_HOME/.installed")" == "$(kafka_stamp)" \
        && -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]
}

install_kafka() {
    if kafka_installed; then
        log "kafka $KAFKA_VERSION: cached in $KAFKA_LIBS"
        return 0
    fi
    need java "install a JDK >= 17"
    need mvn "install Maven to fetch Kafka from Maven Central"
    local t0=$SECONDS tmp="$KAFKA_HOME/libs.$$"
    rm -rf "$tmp"; mkdir -p "$KAFKA_HOME"
    log "kafka $KAFKA_VERSION: fetching kafka_2.13 and its runtime dependencies with Maven"
    mvn -q -B -Dstyle.color=never -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
        -Dkafka.version="$KAFKA_VERSION" -Dhive.kafka.lib="$tmp" > "$KAFKA_HOME/mvn.log" 2>&1 \
        || { sed 's/\x1b\[[0-9;]*m//g' "$KAFKA_HOME/mvn.log" | tail -n 40 >&2; rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed"; }
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after Maven"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    kafka_stamp > "$KAFKA_HOME/.installed"
    log "kafka $KAFKA_VERSION: installed in $((SECONDS - t0))s ($(ls "$KAFKA_LIBS" | wc -l) jars)"
}

postgres_bin() {  # the directory with initdb/pg_ctl: HIVE_POSTGRES_BIN, else Debian's newest, else PATH
    local d
    if [[ -n "${HIVE_POSTGRES_BIN:-}" ]]; then echo "$HIVE_POSTGRES_BIN"; return 0; fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$d/initdb" ]] && { echo "$d"; return 0; }
    done
    d="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
    [[ -x "$d/initdb" ]] && echo "$d"
}

install_postgresql() {  # nothing is downloaded: PostgreSQL comes from the system's package manager
    local bin
    bin="$(postgres_bin)"
    [[ -n "$bin" && -x "$bin/initdb" && -x "$bin/pg_ctl" ]] \
        || die "postgresql: initdb/pg_ctl not found (install Debian's postgresql package, or set HIVE_POSTGRES_BIN)"
    log "postgresql: $("$bin/postgres" --version) in $bin"
}

chromium_bin() { command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true; }

install_chromium() {  # Debian's chromium, driven by Playwright in the browser test (never a browser download)
    local bin
    bin="$(chromium_bin)"
    if [[ -z "$bin" ]]; then
        command -v apt-get >/dev/null 2>&1 || die "chromium: not installed and no apt-get (install Debian's chromium package)"
        [[ "$(id -u)" == 0 ]] || die "chromium: not installed; as root: apt-get install chromium"
        log "chromium: installing Debian's package"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq chromium > "$DIR/chromium-install.log" 2>&1 \
            || { apt-get update -qq && apt-get install -y -qq chromium >> "$DIR/chromium-install.log" 2>&1; } \
            || { tail -n 20 "$DIR/chromium-install.log" >&2; die "chromium: apt-get install failed"; }
        bin="$(chromium_bin)"
        [[ -n "$bin" ]] || die "chromium: installed but not on PATH"
    fi
    log "chromium: $("$bin" --version 2>/dev/null | head -n 1) at $bin"
}

# chromium is a program the tests launch themselves: nothing to start, stop or watch
up_chromium() { install_chromium; }
down_chromium() { :; }

cmd_install() {
    mkdir -p "$DIR"
    local s names
    if [[ "${1:-}" == --seaweedfs-in-background ]]; then
        for s in ferretdb kafka chromium; do
            with_lock "$DIR/.install.lock" "install_$s"
        done
        seaweedfs_installed && { log "seaweedfs $SEAWEEDFS_VERSION: cached at $SEAWEEDFS_BIN"; return 0; }
        # detached (own session, survives make), niced so the tests it overlaps keep the CPUs; it takes the
        # install lock at once, so an `up seaweedfs` meanwhile waits for it instead of building twice
        log "seaweedfs $SEAWEEDFS_VERSION: building in the background (log: $DIR/seaweedfs-install.log)"
        setsid nice -n 15 bash "$0" install seaweedfs > "$DIR/seaweedfs-install.log" 2>&1 < /dev/null &
        return 0
    fi
    names="$(services_from_args "${1:-all}")"
    [[ "${1:-all}" == all ]] && names="$names seaweedfs chromium"
    for s in $names; do
        with_lock "$DIR/.install.lock" "install_$s"
    done
}

seaweedfs_installed() {
    [[ -x "$SEAWEEDFS_BIN" && -f "$SEAWEEDFS_HOME/.installed" \
        && "$(cat "$SEAWEEDFS_HOME/.installed")" == "$SEAWEEDFS_VERSION" ]] || return 1
    "$SEAWEEDFS_BIN" version > /dev/null 2>&1
}

install_seaweedfs() {  # SeaweedFS's `weed`, built from the Go module (see the header for why not `go install`)
    if seaweedfs_installed; then
        log "seaweedfs $SEAWEEDFS_VERSION: cached at $SEAWEEDFS_BIN"
        return 0
    fi
    need go "install Go >= 1.24 to build SeaweedFS"
    need "$PY" "python3 is used to read go's JSON output"
    local t0=$SECONDS json srcdir build="$SEAWEEDFS_HOME/src.$$"
    log "seaweedfs $SEAWEEDFS_VERSION: downloading the Go module (the last cold build on 2 shared cores took 21 min)"
    json="$(cd "$DIR" && GO111MODULE=on GOWORK=off GOFLAGS= go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION")" \
        || die "go mod download github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION failed"
    srcdir="$(printf '%s' "$json" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir",""))')"
    [[ -d "$srcdir" ]] || die "go mod download gave no source directory: $json"
    rm -rf "$build"; mkdir -p "$SEAWEEDFS_HOME"
    cp -R "$srcdir" "$build"
    chmod -R u+w "$build"
    log "seaweedfs $SEAWEEDFS_VERSION: building ./weed"
    ( cd "$build" && GOTOOLCHAIN=local GOWORK=off GOFLAGS=-buildvcs=false \
        go build -trimpath -ldflags='-s -w' -o "$SEAWEEDFS_BIN.tmp" ./weed ) \
        || { rm -rf "$build"; die "building seaweedfs failed"; }
    mv -f "$SEAWEEDFS_BIN.tmp" "$SEAWEEDFS_BIN"
    rm -rf "$build"
    printf '%s\n' "$SEAWEEDFS_VERSION" > "$SEAWEEDFS_HOME/.installed"
    seaweedfs_installed || die "built $SEAWEEDFS_BIN but \`weed version\` fails"
    log "seaweedfs $SEAWEEDFS_VERSION: installed in $((SECONDS - t0))s"
}

# --------------------------------------------------------------------------------------- run
pid_alive() {  # pid_alive PIDFILE PATTERN: the recorded process exists and its command line matches
    local pidfile="$1" pattern="$2" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

spawn() {  # spawn PIDFILE LOGFILE cmd...: start detached (own session), record the real pid
    local pidfile="$1" logfile="$2"; shift 2
    # the inner shell writes its own pid and then execs the service, so the pid file is the service's
    setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" > "$logfile" 2>&1 < /dev/null &
    local i
    for i in $(seq 50); do [[ -s "$pidfile" ]] && return 0; sleep 0.1; done
    die "could not start $1"
}

watch_parent() {  # watch_parent PIDFILE PATTERN [SIGNAL]: stop the service once $HIVE_SERVICES_WATCH_PID has exited
    # (the pytest fixtures set it to their own pid, so a killed test run leaves no broker behind)
    local parent="${HIVE_SERVICES_WATCH_PID:-}" pid
    [[ "$parent" =~ ^[0-9]+$ ]] || return 0
    pid="$(cat "$1")"
    setsid bash -c '
        parent=$1 pid=$2 pattern=$3 signal=$4
        matches() { tr "\0" " " < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"; }
        while kill -0 "$parent" 2>/dev/null; do
            kill -0 "$pid" 2>/dev/null || exit 0
            sleep 2
        done
        matches || exit 0
        kill -"$signal" "$pid" 2>/dev/null
        for _ in $(seq 60); do matches || exit 0; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null' _ "$parent" "$pid" "$2" "${3:-TERM}" > /dev/null 2>&1 < /dev/null &
}

stop_pid() {  # stop_pid PIDFILE PATTERN NAME [SIGNAL]
    local pidfile="$1" pattern="$2" name="$3" signal="${4:-TERM}" pid i
    if pid_alive "$pidfile" "$pattern"; then
        pid="$(cat "$pidfile")"
        log "$name: stopping pid $pid"
        kill -"$signal" "$pid" 2>/dev/null || true
        for i in $(seq 300); do pid_alive "$pidfile" "$pattern" || break; sleep 0.1; done
        if pid_alive "$pidfile" "$pattern"; then
            log "$name: did not stop in 30s, killing"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -f "$pidfile"
}

write_env() {
    mkdir -p "$RUN"
    cat "$RUN"/ferretdb.env "$RUN"/kafka.env "$RUN"/postgresql.env "$RUN"/seaweedfs.env 2>/dev/null > "$RUN/env.tmp" || true
    mv -f "$RUN/env.tmp" "$RUN/env"
}

env_value() {  # env_value FILE NAME
    [[ -f "$1" ]] && sed -n "s/^$2=//p" "$1" | tail -1
}

up_ferretdb() {
    [[ "$FERRETDB_HANDLER" == sqlite || "$FERRETDB_HANDLER" == postgresql ]] \
        || die "HIVE_FERRETDB_HANDLER must be sqlite or postgresql, not '$FERRETDB_HANDLER'"
    ferretdb_installed || die "ferretdb $FERRETDB_VERSION is not installed: run '$0 install ferretdb'"
    local pidfile="$RUN/ferretdb.pid" addr
    if pid_alive "$pidfile" ferretdb; then
        addr="$(env_value "$RUN/ferretdb.env" HIVE_TEST_FERRETDB_ADDR)"
        if [[ -n "$addr" && "$(env_value "$RUN/ferretdb.env" HIVE_TEST_FERRETDB_HANDLER)" == "$FERRETDB_HANDLER" ]] \
            && "$PY" "$PROBE" mongo "$addr"; then
            log "ferretdb: already running on $addr"
            return 0
        fi
        stop_pid "$pidfile" ferretdb ferretdb
    fi
    local port debug_port backend
    case "$FERRETDB_HANDLER" in
        sqlite)
            mkdir -p "$RUN/ferretdb-data"
            backend=(--handler=sqlite --sqlite-url="file:$RUN/ferretdb-data/") ;;
        postgresql)
            up_postgresql
            local pg
            pg="$(env_value "$RUN/postgresql.env" HIVE_TEST_POSTGRES_ADDR)"
            pg_ensure_db "$pg" ferretdb
            backend=(--handler=postgresql --postgresql-url="postgres://hive@$pg/ferretdb") ;;
    esac
    read -r port debug_port < <("$PY" "$PROBE" freeport 2)
    port="${HIVE_FERRETDB_PORT:-$port}"
    addr="127.0.0.1:$port"
    mkdir -p "$RUN/ferretdb-state"
    log "ferretdb: starting $FERRETDB_VERSION on $addr (${backend[0]#--handler=} backend)"
    spawn "$pidfile" "$RUN/ferretdb.log" "$FERRETDB_BIN" "${backend[@]}" --state-dir="$RUN/ferretdb-state" \
        --listen-addr="$addr" --debug-addr="127.0.0.1:$debug_port" \
        --telemetry=disable --log-level="${HIVE_FERRETDB_LOG_LEVEL:-WARN}"
    watch_parent "$pidfile" ferretdb
    if ! "$PY" "$PROBE" wait mongo "$addr" "$FERRETDB_READY_S" "$(cat "$pidfile")"; then
        tail -n 30 "$RUN/ferretdb.log" >&2 || true
        stop_pid "$pidfile" ferretdb ferretdb
        die "ferretdb did not become ready (log: $RUN/ferretdb.log)"
    fi
    printf 'HIVE_TEST_MONGODB_URI=mongodb://%s/\nHIVE_TEST_FERRETDB_ADDR=%s\nHIVE_TEST_FERRETDB_HANDLER=%s\n' \
        "$addr" "$addr" "$FERRETDB_HANDLER" > "$RUN/ferretdb.env"
    log "ferretdb: ready on $addr"
}

PG_PATTERN="postgres -D"  # the server's command line, for pid_alive / stop_pid / watch_parent

pg_ready() {  # pg_ready HOST:PORT: the server accepts connections
    "$(postgres_bin)/pg_isready" -q -h "${1%:*}" -p "${1##*:}"
}

pg_ensure_db() {  # pg_ensure_db HOST:PORT NAME: create database NAME unless it exists
    local bin
    bin="$(postgres_bin)"
    "$bin/psql" -qAt -h "${1%:*}" -p "${1##*:}" -U hive -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$2'" | grep -q 1 \
        || "$bin/createdb" -h "${1%:*}" -p "${1##*:}" -U hive "$2"
}

AS_OWNER=()  # prefix for PostgreSQL server commands: root may not run them, the `postgres` user does
[[ "$(id -u)" == 0 ]] && AS_OWNER=(setpriv --reuid=postgres --regid=postgres --clear-groups --)

postgres_dir() {  # where the cluster lives: $RUN/postgresql, or as root a /tmp directory of `postgres`
    # (root's home, and pytest's basetemp, are closed to other users)
    if [[ "$(id -u)" != 0 ]]; then echo "$RUN/postgresql"; return 0; fi
    local d
    d="$(cat "$RUN/postgresql.dir" 2>/dev/null || true)"
    if [[ -z "$d" || ! -d "$d" ]]; then
        d="$(mktemp -d /tmp/hive-postgresql.XXXXXX)"
        chown postgres: "$d"
        echo "$d" > "$RUN/postgresql.dir"
    fi
    echo "$d"
}

up_postgresql() {
    local bin pidfile="$RUN/postgresql.pid" addr dir data sock
    bin="$(postgres_bin)"
    [[ -n "$bin" ]] || die "postgresql: not installed (Debian's postgresql package), see '$0 install postgresql'"
    if pid_alive "$pidfile" "$PG_PATTERN"; then
        addr="$(env_value "$RUN/postgresql.env" HIVE_TEST_POSTGRES_ADDR)"
        if [[ -n "$addr" ]] && pg_ready "$addr"; then
            log "postgresql: already running on $addr"
            return 0
        fi
        stop_pid "$pidfile" "$PG_PATTERN" postgresql INT
    fi
    dir="$(postgres_dir)" data="$dir/data" sock="$dir/sock"
    if [[ ! -f "$data/PG_VERSION" ]]; then
        "${AS_OWNER[@]}" mkdir -p "$sock"
        "${AS_OWNER[@]}" "$bin/initdb" -D "$data" -U hive --auth=trust --encoding=UTF8 --no-locale \
            > "$RUN/postgresql-initdb.log" 2>&1 \
            || { tail -n 20 "$RUN/postgresql-initdb.log" >&2; die "postgresql: initdb failed"; }
    fi
    local port
    port="$("$PY" "$PROBE" freeport 1)"
    port="${HIVE_POSTGRES_PORT:-$port}"
    addr="127.0.0.1:$port"
    log "postgresql: starting $("$bin/postgres" --version | awk '{print $3}') on $addr (cluster in $data)"
    spawn "$pidfile" "$RUN/postgresql.log" "${AS_OWNER[@]}" "$bin/postgres" -D "$data" -p "$port" -k "$sock" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off
    watch_parent "$pidfile" "$PG_PATTERN" INT
    local i
    for i in $(seq $((POSTGRES_READY_S * 4))); do
        pg_ready "$addr" && break
        pid_alive "$pidfile" "$PG_PATTERN" || break
        sleep 0.25
    done
    if ! pg_ready "$addr"; then
        tail -n 30 "$RUN/postgresql.log" >&2 || true
        stop_pid "$pidfile" "$PG_PATTERN" postgresql INT
        die "postgresql did not become ready (log: $RUN/postgresql.log)"
    fi
    pg_ensure_db "$addr" hive
    printf 'HIVE_TEST_POSTGRES_URL=postgresql://hive@%s/hive\nHIVE_TEST_POSTGRES_ADDR=%s\n' "$addr" "$addr" > "$RUN/postgresql.env"
    log "postgresql: ready on $addr"
}

down_postgresql() {  # SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for every client)
    stop_pid "$RUN/postgresql.pid" "$PG_PATTERN" postgresql INT
    rm -f "$RUN/postgresql.env"
}

# the secured listeners' one account (SCRAM-SHA-512 and PLAIN): a throw-away broker on loopback, not a secret
KAFKA_TEST_USER=hive
KAFKA_TEST_PASSWORD=hive-test-password

kafka_tls() {  # kafka_tls DIR: a CA, the broker's certificate (127.0.0.1, localhost) and a client certificate
    local dir="$1" name
    need openssl "install openssl (the secured Kafka listeners' certificates)"
    rm -rf "$dir"; mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=hive-test-ca" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null || die "openssl: the test CA failed"
    for name in broker client; do
        openssl req -newkey rsa:2048 -nodes -subj "/CN=hive-test-$name" \
            -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null || die "openssl: the $name key failed"
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/$name.ext"
        openssl x509 -req -days 3650 -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
            -CAcreateserial -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null \
            || die "openssl: the $name certificate failed"
    done
    cat "$dir/broker.key" "$dir/broker.crt" > "$dir/broker.pem"  # Kafka's PEM keystore: key, then chain
    chmod 600 "$dir"/*.key "$dir/broker.pem"
}

up_kafka() {
    kafka_installed || die "kafka $KAFKA_VERSION is not installed: run '$0 install kafka'"
    need java "install a JDK >= 17"
    local pidfile="$RUN/kafka.pid" addr
    if pid_alive "$pidfile" kafka.Kafka; then
        addr="$(env_value "$RUN/kafka.env" HIVE_TEST_KAFKA_BOOTSTRAP)"
        if [[ -n "$addr" ]] && "$PY" "$PROBE" kafka "$addr"; then
            log "kafka: already running on $addr"
            return 0
        fi
        stop_pid "$pidfile" kafka.Kafka kafka
    fi
    local port cport sasl_port tls_port tls="$RUN/kafka-tls"
    read -r port cport sasl_port tls_port < <("$PY" "$PROBE" freeport 4)
    port="${HIVE_KAFKA_PORT:-$port}"
    cport="${HIVE_KAFKA_CONTROLLER_PORT:-$cport}"
    addr="127.0.0.1:$port"
    # a throw-away single-node cluster: fresh storage on every start (the ports may have changed)
    rm -rf "$RUN/kafka-data"
    mkdir -p "$RUN/kafka-data"
    kafka_tls "$tls"
    cat > "$RUN/kafka.properties" <<EOF
# generated by scripts/services.sh: one combined broker+controller node on loopback (KRaft)
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
# PLAINTEXT for most tests; SASL_SSL (SCRAM-SHA-512 or PLAIN over TLS) and SSL with a client certificate
# required, for the secured-Kafka settings (KAFKA_SECURITY_PROTOCOL...); test-only credentials
listeners=PLAINTEXT://$addr,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sasl_port,SSL://127.0.0.1:$tls_port
advertised.listeners=PLAINTEXT://$addr,SASL_SSL://127.0.0.1:$sasl_port,SSL://127.0.0.1:$tls_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.crt
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_TEST_USER="$KAFKA_TEST_PASSWORD";
log.dirs=$RUN/kafka-data
num.partitions=1
num.network.threads=2
num.io.threads=2
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# tests produce events with timestamps days in the past: never expire them by time
log.retention.ms=-1
EOF
    local java_opts=($KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
        -Dorg.slf4j.simpleLogger.defaultLogLevel="${HIVE_KAFKA_LOG_LEVEL:-warn}"
        -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info
        -Dorg.slf4j.simpleLogger.showDateTime=true)
    local cluster_id
    cluster_id="$(java -cp "$KAFKA_LIBS/*" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    [[ -n "$cluster_id" ]] || die "kafka.tools.StorageTool random-uuid failed"
    java -cp "$KAFKA_LIBS/*" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn kafka.tools.StorageTool \
        format -t "$cluster_id" -c "$RUN/kafka.properties" \
        --add-scram "SCRAM-SHA-512=[name=$KAFKA_TEST_USER,password=$KAFKA_TEST_PASSWORD]" > "$RUN/kafka-format.log" 2>&1 \
        || { tail -n 20 "$RUN/kafka-format.log" >&2; die "formatting Kafka storage failed"; }
    log "kafka: starting $KAFKA_VERSION (KRaft, cluster $cluster_id) on $addr, controller 127.0.0.1:$cport"
    spawn "$pidfile" "$RUN/kafka.log" java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$RUN/kafka.properties"
    watch_parent "$pidfile" kafka.Kafka
    if ! "$PY" "$PROBE" wait kafka "$addr" "$KAFKA_READY_S" "$(cat "$pidfile")"; then
        tail -n 40 "$RUN/kafka.log" >&2 || true
        stop_pid "$pidfile" kafka.Kafka kafka
        die "kafka did not become ready (log: $RUN/kafka.log)"
    fi
    printf 'HIVE_TEST_KAFKA_BOOTSTRAP=%s\nHIVE_TEST_KAFKA_SASL_SSL_BOOTSTRAP=127.0.0.1:%s\nHIVE_TEST_KAFKA_SSL_BOOTSTRAP=127.0.0.1:%s\nHIVE_TEST_KAFKA_TLS_DIR=%s\nHIVE_TEST_KAFKA_USER=%s\nHIVE_TEST_KAFKA_PASSWORD=%s\n' \
        "$addr" "$sasl_port" "$tls_port" "$tls" "$KAFKA_TEST_USER" "$KAFKA_TEST_PASSWORD" > "$RUN/kafka.env"
    log "kafka: ready on $addr"
}

down_ferretdb() {
    stop_pid "$RUN/ferretdb.pid" ferretdb ferretdb
    rm -f "$RUN/ferretdb.env"
}

down_kafka() {
    stop_pid "$RUN/kafka.pid" kafka.Kafka kafka
    rm -f "$RUN/kafka.env"
}

seaweedfs_addr() { env_value "$RUN/seaweedfs.env" HIVE_TEST_S3_ENDPOINT | sed 's#^http://##'; }

up_seaweedfs() {  # master + volume + filer + S3 gateway in one `weed server`, anonymous access, loopback only
    # a build started by `install --seaweedfs-in-background` holds the install lock: wait for it (or build)
    seaweedfs_installed || with_lock "$DIR/.install.lock" install_seaweedfs \
        || die "seaweedfs $SEAWEEDFS_VERSION is not installed and its build failed (log: $DIR/seaweedfs-install.log)"
    local pidfile="$RUN/seaweedfs.pid" addr
    if pid_alive "$pidfile" "weed server"; then
        addr="$(seaweedfs_addr)"
        if [[ -n "$addr" ]] && "$PY" "$PROBE" s3 "$addr"; then
            log "seaweedfs: already running, S3 on $addr"
            return 0
        fi
        stop_pid "$pidfile" "weed server" seaweedfs
    fi
    # every port explicit (by default each gRPC port is its HTTP port + 10000, which may be taken or > 65535);
    # the Iceberg and Lance catalogs (fixed default ports) and the telemetry to seaweedfs.com are off. Each
    # bucket is a collection whose first write takes up to 7 volumes: with the default 8, the writes to a third
    # bucket failed (InternalError: no free volumes). Volumes are files that grow as they are written
    local master mgrpc volume vgrpc filer fgrpc s3 s3grpc
    read -r master mgrpc volume vgrpc filer fgrpc s3 s3grpc < <("$PY" "$PROBE" freeport 8)
    s3="${HIVE_SEAWEEDFS_S3_PORT:-$s3}"
    addr="127.0.0.1:$s3"
    # a throw-away store: fresh data on every start (like Kafka's); the tests make their own buckets
    rm -rf "$RUN/seaweedfs-data"
    mkdir -p "$RUN/seaweedfs-data"
    log "seaweedfs: starting $SEAWEEDFS_VERSION, S3 on $addr"
    spawn "$pidfile" "$RUN/seaweedfs.log" "$SEAWEEDFS_BIN" server -dir="$RUN/seaweedfs-data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="$master" -master.port.grpc="$mgrpc" -master.volumeSizeLimitMB=64 \
        -volume.port="$volume" -volume.port.grpc="$vgrpc" -volume.max=64 \
        -filer -filer.port="$filer" -filer.port.grpc="$fgrpc" \
        -s3 -s3.port="$s3" -s3.port.grpc="$s3grpc" -s3.port.iceberg=0 -s3.port.lance=0 \
        -master.telemetry=false
    watch_parent "$pidfile" "weed server"
    if ! "$PY" "$PROBE" wait s3 "$addr" "$SEAWEEDFS_READY_S" "$(cat "$pidfile")"; then
        tail -n 30 "$RUN/seaweedfs.log" >&2 || true
        stop_pid "$pidfile" "weed server" seaweedfs
        die "seaweedfs did not become ready (log: $RUN/seaweedfs.log)"
    fi
    # the filer (HOST:PORT.GRPC, as `weed s3 -filer=` takes it) and the binary: a test starts its own gateway
    # with identities over the same data (this one is anonymous)
    printf 'HIVE_TEST_S3_ENDPOINT=http://%s\nHIVE_TEST_S3_FILER=127.0.0.1:%s.%s\nHIVE_TEST_SEAWEEDFS_BIN=%s\n' \
        "$addr" "$filer" "$fgrpc" "$SEAWEEDFS_BIN" > "$RUN/seaweedfs.env"
    log "seaweedfs: ready, S3 on http://$addr"
}

down_seaweedfs() {
    stop_pid "$RUN/seaweedfs.pid" "weed server" seaweedfs
    rm -f "$RUN/seaweedfs.env"
}

cmd_up() {
    mkdir -p "$RUN"
    need "$PY" "python3 picks free ports and probes readiness"
    local s
    for s in $(services_from_args "${1:-all}"); do
        with_lock "$RUN/.lock" "up_$s"
    done
    write_env
    cat "$RUN/env"
}

cmd_down() {
    [[ -d "$RUN" ]] || return 0
    local s names
    names="$(services_from_args "${1:-all}")"
    # `down` (all) also stops a PostgreSQL cluster started for FerretDB's postgresql backend
    [[ "${1:-all}" == all ]] && names="$names postgresql seaweedfs"
    for s in $names; do
        with_lock "$RUN/.lock" "down_$s"
    done
    write_env
}

cmd_status() {
    local s rc=0 addr
    for s in $(services_from_args "${1:-all}"); do
        case "$s" in
            ferretdb)
                if ! ferretdb_installed; then echo "ferretdb: not installed ($FERRETDB_VERSION)"; rc=3
                elif pid_alive "$RUN/ferretdb.pid" ferretdb; then
                    addr="$(env_value "$RUN/ferretdb.env" HIVE_TEST_FERRETDB_ADDR)"
                    if [[ -n "$addr" ]] && "$PY" "$PROBE" mongo "$addr"; then
                        echo "ferretdb: running $FERRETDB_VERSION pid $(cat "$RUN/ferretdb.pid") mongodb://$addr/"
                    else echo "ferretdb: process $(cat "$RUN/ferretdb.pid") alive but not answering"; rc=3; fi
                else echo "ferretdb: stopped ($FERRETDB_VERSION installed)"; rc=3; fi ;;
            kafka)
                if ! kafka_installed; then echo "kafka: not installed ($KAFKA_VERSION)"; rc=3
                elif pid_alive "$RUN/kafka.pid" kafka.Kafka; then
                    addr="$(env_value "$RUN/kafka.env" HIVE_TEST_KAFKA_BOOTSTRAP)"
                    if [[ -n "$addr" ]] && "$PY" "$PROBE" kafka "$addr"; then
                        echo "kafka: running $KAFKA_VERSION pid $(cat "$RUN/kafka.pid") bootstrap $addr"
                    else echo "kafka: process $(cat "$RUN/kafka.pid") alive but not answering"; rc=3; fi
                else echo "kafka: stopped ($KAFKA_VERSION installed)"; rc=3; fi ;;
            postgresql)
                if [[ -z "$(postgres_bin)" ]]; then echo "postgresql: not installed"; rc=3
                elif pid_alive "$RUN/postgresql.pid" "$PG_PATTERN"; then
                    addr="$(env_value "$RUN/postgresql.env" HIVE_TEST_POSTGRES_ADDR)"
                    if [[ -n "$addr" ]] && pg_ready "$addr"; then
                        echo "postgresql: running pid $(cat "$RUN/postgresql.pid") postgresql://hive@$addr/hive"
                    else echo "postgresql: process $(cat "$RUN/postgresql.pid") alive but not answering"; rc=3; fi
                else echo "postgresql: stopped"; rc=3; fi ;;
            seaweedfs)
                if ! seaweedfs_installed; then echo "seaweedfs: not installed ($SEAWEEDFS_VERSION)"; rc=3
                elif pid_alive "$RUN/seaweedfs.pid" "weed server"; then
                    addr="$(seaweedfs_addr)"
                    if [[ -n "$addr" ]] && "$PY" "$PROBE" s3 "$addr"; then
                        echo "seaweedfs: running pid $(cat "$RUN/seaweedfs.pid") S3 http://$addr"
                    else echo "seaweedfs: process $(cat "$RUN/seaweedfs.pid") alive but not answering"; rc=3; fi
                else echo "seaweedfs: stopped ($SEAWEEDFS_VERSION installed)"; rc=3; fi ;;
            chromium)
                if [[ -n "$(chromium_bin)" ]]; then echo "chromium: installed at $(chromium_bin)"
                else echo "chromium: not installed"; rc=3; fi ;;
        esac
    done
    return $rc
}

cmd_env() {
    [[ -f "$RUN/env" ]] || return 0
    sed -e '/^[A-Z_][A-Z0-9_]*=/!d' -e 's/^/export /' "$RUN/env"
}

case "${1:-}" in
    install) cmd_install "${2:-all}" ;;
    up) cmd_up "${2:-all}" ;;
    down) cmd_down "${2:-all}" ;;
    status) cmd_status "${2:-all}" ;;
    env) cmd_env ;;
    clean) cmd_down all
           [[ -f "$RUN/postgresql.dir" ]] && rm -rf "$(cat "$RUN/postgresql.dir")"
           rm -rf "$RUN" ;;
    -h|--help|help) sed -n '2,/^set /{/^#/p}' "$0" ;;
    *) echo "usage: $0 install [--seaweedfs-in-background]|up|down|status|env|clean [ferretdb|kafka|postgresql|seaweedfs]" >&2; exit 2 ;;
esac
