#!/usr/bin/env bash
# Local Apicurio Registry (docs/schema-registry.md) for development and tests: the app tarball comes
# from Maven Central (io.apicurio:apicurio-registry-app:<version>:tar.gz:all), unpacked once into a
# cache; `java -jar quarkus-run.jar` runs it. Schemas live in an H2 database file in the state dir,
# so they survive a restart (or a kill) as a real registry's do; `reset` forgets them.
#
# Usage: scripts/registry.sh start|stop|kill|status|reset
#   kill: SIGKILL, as a crash would (tests use it); start again brings the same schemas back.
#
# Environment overrides (defaults in brackets):
#   REGISTRY_PORT            HTTP port; clients take http://localhost:<port>/apis/ccompat/v7  [8081]
#   REGISTRY_MANAGEMENT_PORT Quarkus' management interface (health), on loopback  [REGISTRY_PORT + 1]
#   REGISTRY_VERSION         Apicurio Registry version                        [3.3.3]
#   REGISTRY_HEAP            JVM heap (-Xmx)                                  [256m]
#   REGISTRY_STATE_DIR       database, pid and logs                           [<project root>/.registry/<port>]
#   REGISTRY_APP_DIR         the unpacked app (shared by every state dir)     [<project root>/.registry/app-<version>]
#   REGISTRY_START_TIMEOUT   seconds to wait until it answers                 [90]
#   JAVA_HOME                a JDK 21 or newer; without one, the newest JVM under REGISTRY_JVM_DIR
#   REGISTRY_JVM_DIR         where installed JVMs are looked for               [/usr/lib/jvm]
#
# Exit codes: 0 ok; 1 error; 3 `status` when not running.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

REGISTRY_PORT="${REGISTRY_PORT:-8081}"
REGISTRY_MANAGEMENT_PORT="${REGISTRY_MANAGEMENT_PORT:-$((REGISTRY_PORT + 1))}"
REGISTRY_VERSION="${REGISTRY_VERSION:-3.3.3}"
REGISTRY_HEAP="${REGISTRY_HEAP:-256m}"
REGISTRY_START_TIMEOUT="${REGISTRY_START_TIMEOUT:-90}"
MIN_JAVA=21 # Apicurio Registry 3.x is built for Java 21 (class file version 65)

STATE_DIR="${REGISTRY_STATE_DIR:-$ROOT/.registry/$REGISTRY_PORT}"
APP_DIR="${REGISTRY_APP_DIR:-$ROOT/.registry/app-$REGISTRY_VERSION}"
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
PID_FILE="$STATE_DIR/registry.pid"
LOG_FILE="$STATE_DIR/registry.log"
DB_FILE="$STATE_DIR/db/registry" # H2 adds .mv.db
URL="http://localhost:$REGISTRY_PORT/apis/ccompat/v7"

log() { echo "registry: $*"; }
die() { echo "registry: error: $*" >&2; exit 1; }

[[ "$REGISTRY_PORT" =~ ^[0-9]+$ && "$REGISTRY_MANAGEMENT_PORT" =~ ^[0-9]+$ ]] \
  || die "REGISTRY_PORT and REGISTRY_MANAGEMENT_PORT must be port numbers"

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# The pid of our registry if it runs (its command line names this state dir's database).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F "$DB_FILE" >/dev/null; then
    echo "$pid"
  else
    rm -f "$PID_FILE"
  fi
}

# The major version of a java binary (17, 21, 25...), or nothing.
java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p' | head -n 1
}

# A java of version MIN_JAVA or newer: JAVA_HOME's if it is one, else the newest installed JVM.
find_java() {
  local candidate major best="" best_major=0 seen=""
  for candidate in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" "${REGISTRY_JVM_DIR:-/usr/lib/jvm}"/*/bin/java; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    major="$(java_major "$candidate")"
    [[ -n "$major" ]] || continue
    seen+=" $candidate ($major)"
    if [[ -n "${JAVA_HOME:-}" && "$candidate" == "$JAVA_HOME/bin/java" && "$major" -ge "$MIN_JAVA" ]]; then
      echo "$candidate"
      return 0
    fi
    if (( major > best_major )); then best="$candidate"; best_major=$major; fi
  done
  if (( best_major >= MIN_JAVA )); then echo "$best"; return 0; fi
  die "Apicurio Registry $REGISTRY_VERSION needs Java $MIN_JAVA or newer; found:${seen:- no java at all}. Install a JDK $MIN_JAVA+ and set JAVA_HOME to it"
}

# Unpack the app from Maven Central once; an interrupted fetch never looks complete.
ensure_app() {
  [[ -f "$APP_DIR/quarkus-run.jar" ]] && return 0
  command -v mvn >/dev/null 2>&1 || die "'mvn' not found on PATH; install Maven to fetch the registry"
  local tmp="$APP_DIR.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "fetching Apicurio Registry $REGISTRY_VERSION with Maven into $APP_DIR (158 MB, once)..."
  if ! mvn -B -q dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all" \
       -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
    tail -n 30 "$tmp/mvn.log" >&2
    die "mvn failed to fetch io.apicurio:apicurio-registry-app:$REGISTRY_VERSION"
  fi
  tar -xzf "$tmp"/apicurio-registry-app-*.tar.gz -C "$tmp" || die "unpacking the registry failed"
  rm -f "$tmp"/apicurio-registry-app-*.tar.gz
  [[ -f "$tmp/quarkus-run.jar" ]] || die "the registry tarball has no quarkus-run.jar"
  rm -rf "$APP_DIR"
  mv "$tmp" "$APP_DIR"
}

answers() { curl -sf -o /dev/null --max-time 2 "$URL/subjects"; }

cmd_start() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]] && answers; then
    log "already running at $URL (pid $pid)"
    return 0
  fi
  if [[ -z "$pid" ]]; then
    local port
    for port in "$REGISTRY_PORT" "$REGISTRY_MANAGEMENT_PORT"; do
      port_open "$port" && die "port $port is already in use by another process (set REGISTRY_PORT)"
    done
    local java
    java="$(find_java)"
    ensure_app
    mkdir -p "$(dirname "$DB_FILE")"
    rm -f "$PID_FILE"
    # Loopback only; H2 on a file; a small heap (it needs about 285 MiB in all).
    # setsid + nohup: its own session, so it outlives the shell that started it; the inner bash
    # writes its pid, then execs java, so the pid file holds the JVM's. Loopback only; H2 on a
    # file; a small heap (about 285 MiB in all).
    nohup setsid bash -c 'echo $$ >"$0"; cd "$1" && shift && exec "$@"' "$PID_FILE" "$APP_DIR" \
      "$java" -Xmx"$REGISTRY_HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
      -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT" \
      -Dapicurio.datasource.url="jdbc:h2:file:$DB_FILE" \
      -jar quarkus-run.jar >>"$LOG_FILE" 2>&1 </dev/null &
    local i
    for i in {1..50}; do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ -n "$pid" ]] || die "the registry did not start (see $LOG_FILE)"
  fi
  local start=$SECONDS
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -n 30 "$LOG_FILE" >&2
      die "the registry exited during startup (log: $LOG_FILE)"
    fi
    (( SECONDS - start < REGISTRY_START_TIMEOUT )) || die "not answering after ${REGISTRY_START_TIMEOUT}s (see $LOG_FILE)"
    sleep 0.25
  done
  log "started at $URL in $((SECONDS - start))s (pid $pid)"
}

stop_with() {
  local signal="$1" pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then log "not running"; return 0; fi
  kill "-$signal" "$pid" 2>/dev/null || true
  local i
  for i in {1..100}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  log "stopped (SIG$signal, pid $pid)"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]] && answers; then
    log "running at $URL (pid $pid)"
  else
    log "not running${pid:+ (pid $pid is not answering)}"
    exit 3
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) stop_with TERM ;;
  kill) stop_with KILL ;;
  status) cmd_status ;;
  reset) stop_with TERM; rm -rf "$STATE_DIR/db"; log "schemas forgotten ($STATE_DIR/db removed)" ;;
  *) echo "usage: $0 start|stop|kill|status|reset" >&2; exit 1 ;;
esac
