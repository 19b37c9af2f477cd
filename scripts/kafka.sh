#!/usr/bin/env bash
# Local Apache Kafka for development and tests: one KRaft node (broker + controller in one JVM,
# no ZooKeeper), or with KAFKA_NODES=3 a cluster of three such nodes (a quorum of three
# controllers). The jars come from the Maven repository via scripts/kafka/pom.xml, so nothing but
# OpenJDK 17 and Maven is needed (no Docker, no Kafka tarball).
#
# Usage: scripts/kafka.sh start|stop|status|restart
#        scripts/kafka.sh kill N              SIGKILL node N, as a crash would (start brings it back)
#        scripts/kafka.sh replicate TOPIC RF  give every partition of TOPIC RF replicas
# `start` starts whichever nodes are down; `status` says which are up and, on a cluster, which node
# is the active controller, the coordinators, and how many partition leaders each node holds.
# Give every command the same KAFKA_NODES (and ports, state dir).
#
# Environment overrides (defaults in brackets):
#   KAFKA_NODES            nodes: 1, or a cluster of 2 to 9               [1]
#   KAFKA_PORT             PLAINTEXT listener port of node 1; node i
#                          listens on KAFKA_PORT + 100*(i-1), and so do
#                          all the other ports below                     [9092]
#   KAFKA_CONTROLLER_PORT  KRaft controller listener port                [9093]
#   KAFKA_SASL_PORT        SASL_PLAINTEXT (PLAIN) listener port;
#                          set to an empty string to disable it          [9094]
#   KAFKA_SASL_USERNAME    user accepted on the SASL listeners           [pipeline]
#   KAFKA_SASL_PASSWORD    its password                                  [pipeline-secret]
#   KAFKA_SSL_PORT         SSL listener port (TLS, no SASL); empty: off  []
#   KAFKA_SASL_SSL_PORT    SASL_SSL (PLAIN over TLS) listener port;
#                          empty: off                                    []
#   KAFKA_ACLS             1: StandardAuthorizer, one user per role
#                          (admin, app, predictor, trainer), and no
#                          unauthenticated listener                      [0]
#   KAFKA_ROLE_PASSWORDS   with KAFKA_ACLS=1: role:password,...          [<role>-secret for each role]
#   KAFKA_HEAP             JVM heap (-Xmx and -Xms)                      [512m]
#   KAFKA_STATE_DIR        jars, data, config, pid and logs              [<project root>/.kafka]
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to be ready    [90]
#
# State directory layout (one node; a cluster keeps each node's data/, server.properties,
# broker.pid and logs/ in cluster/node<i>/, and its id in cluster/cluster.id):
#   lib/               broker classpath (mvn dependency:copy-dependencies), lib/.pom.sha256 stamp
#   data/              log.dirs (topic data and KRaft metadata); kept across restarts
#   cluster.id         cluster id, generated once
#   server.properties  broker config, regenerated on every start (mode 600: holds the SASL password)
#   tls/               with an SSL or SASL_SSL port: ca.pem (give it to clients as KAFKA_SSL_CAFILE),
#                      ca.key, broker.pem (key + certificate for DNS name localhost); made once
#   broker.pid         pid of the running JVM
#   logs/server.log    broker log (log4j2, scripts/kafka/log4j2.yaml); logs/console.out: JVM stdout/err
#
# Exit codes: 0 ok; 1 error; 3 `status` when not running.
set -euo pipefail

# --- paths and settings ----------------------------------------------------------------------

# Resolve the project root from this file's location so the script works from any directory.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONFIG="$SCRIPT_DIR/kafka/log4j2.yaml"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
# No colon in the expansion: an explicitly empty KAFKA_SASL_PORT disables the SASL listener.
KAFKA_SASL_PORT="${KAFKA_SASL_PORT-9094}"
KAFKA_SASL_USERNAME="${KAFKA_SASL_USERNAME:-pipeline}"
KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-pipeline-secret}"
KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
KAFKA_ACLS="${KAFKA_ACLS:-0}"
KAFKA_ROLE_PASSWORDS="${KAFKA_ROLE_PASSWORDS:-admin:admin-secret,app:app-secret,predictor:predictor-secret,trainer:trainer-secret}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
KAFKA_NODES="${KAFKA_NODES:-1}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"

STATE_DIR="${KAFKA_STATE_DIR:-$ROOT/.kafka}"
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)" # absolute: log.dirs and the pid check need it
LIB_DIR="$STATE_DIR/lib"
TLS_DIR="$STATE_DIR/tls"

log() { echo "kafka: $*"; }
die() { echo "kafka: error: $*" >&2; exit 1; }

[[ "$KAFKA_NODES" =~ ^[1-9]$ ]] || die "KAFKA_NODES must be a number of nodes from 1 to 9, got '$KAFKA_NODES'"
if (( KAFKA_NODES == 1 )); then
  CLUSTER_ID_FILE="$STATE_DIR/cluster.id"
else
  CLUSTER_ID_FILE="$STATE_DIR/cluster/cluster.id"
fi

# Port $1 (empty: off) of node $2: node i uses the base port + 100*(i-1).
node_port() { [[ -n "$1" ]] && echo $(( $1 + 100 * ($2 - 1) )) || true; }

# Point the per-node variables (ports, files) at node $1.
select_node() {
  NODE="$1"
  PORT="$(node_port "$KAFKA_PORT" "$NODE")"
  CONTROLLER_PORT="$(node_port "$KAFKA_CONTROLLER_PORT" "$NODE")"
  SASL_PORT="$(node_port "$KAFKA_SASL_PORT" "$NODE")"
  SSL_PORT="$(node_port "$KAFKA_SSL_PORT" "$NODE")"
  SASL_SSL_PORT="$(node_port "$KAFKA_SASL_SSL_PORT" "$NODE")"
  if (( KAFKA_NODES == 1 )); then NODE_DIR="$STATE_DIR"; else NODE_DIR="$STATE_DIR/cluster/node$NODE"; fi
  DATA_DIR="$NODE_DIR/data"
  LOG_DIR="$NODE_DIR/logs"
  PROPS="$NODE_DIR/server.properties"
  PID_FILE="$NODE_DIR/broker.pid"
  SERVER_LOG="$LOG_DIR/server.log"
  OFFSET_FILE="$LOG_DIR/.start-offset" # size of server.log when the current broker was launched
}

NODE_IDS="$(seq 1 "$KAFKA_NODES")"
select_node 1

# Every node's client address, as KAFKA_BOOTSTRAP_SERVERS wants them.
bootstrap_servers() {
  local i out=""
  for i in $NODE_IDS; do out+="${out:+,}localhost:$(node_port "$KAFKA_PORT" "$i")"; done
  echo "$out"
}

# --- helpers ---------------------------------------------------------------------------------

# True if something accepts TCP connections on localhost:$1. Uses bash's /dev/tcp (no Python
# venv needed); `timeout` guards against a connect that hangs.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Print the pid of our broker if it is alive, else nothing (and remove a stale pid file).
# The command line must name kafka.Kafka and this state dir's server.properties, so a recycled
# pid of an unrelated process is not mistaken for the broker.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -F "kafka.Kafka $PROPS" >/dev/null; then
    echo "$pid"
  else
    rm -f "$PID_FILE"
  fi
}

require_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH; $2"
}

# Fetch the broker classpath into lib/ unless it is already there for this exact pom.xml.
# The sha256 of pom.xml is the cache key, so editing versions in the pom triggers a re-fetch.
ensure_lib() {
  local want stamp="$LIB_DIR/.pom.sha256"
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$LIB_DIR/*.jar" >/dev/null; then
    return 0
  fi
  require_cmd mvn "install Maven (apt-get install maven) to fetch the Kafka jars"
  log "fetching broker jars with Maven into $LIB_DIR (first run takes a while)..."
  # Download into a temp dir and swap it in, so an interrupted fetch never looks complete.
  local tmp="$STATE_DIR/lib.tmp"
  rm -rf "$tmp"
  mkdir -p "$LOG_DIR"
  # Output goes to logs/mvn.log (mvn prints colour codes even with -q); shown only on failure.
  if ! mvn -B -q -f "$POM" dependency:copy-dependencies \
       -DincludeScope=runtime -DoutputDirectory="$tmp" >"$LOG_DIR/mvn.log" 2>&1; then
    tail -n 30 "$LOG_DIR/mvn.log" >&2
    die "mvn failed to fetch the Kafka jars (full output: $LOG_DIR/mvn.log)"
  fi
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
}

# Run a Kafka main class with the broker classpath and our log4j2 config.
java_run() {
  java -cp "$LIB_DIR/*" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
    "$@"
}

# A CA and a broker certificate for DNS name localhost only (clients verify the host name: a
# connection to 127.0.0.1 must fail), made once with openssl. Nothing secret is committed: the CA
# key lives in the state dir, which git ignores.
ensure_tls() {
  [[ -s "$TLS_DIR/broker.pem" && -s "$TLS_DIR/ca.pem" ]] && return 0
  require_cmd openssl "install OpenSSL (apt-get install openssl) to make the test certificates"
  mkdir -p "$TLS_DIR" "$LOG_DIR"
  chmod 700 "$TLS_DIR"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -keyout ca.key -out ca.pem \
      -subj "/CN=kafka-ml-pipeline local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost"
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -extfile broker.ext -out broker.crt
    cat broker.key broker.crt ca.pem >broker.pem
    rm -f broker.csr broker.ext ca.srl
    chmod 600 ca.key broker.key broker.pem
  ) >"$LOG_DIR/tls.log" 2>&1 || { tail -n 20 "$LOG_DIR/tls.log" >&2; die "making the TLS certificates failed"; }
  log "TLS certificates made in $TLS_DIR (clients: KAFKA_SSL_CAFILE=$TLS_DIR/ca.pem)"
}

# The JAAS entry of a PLAIN listener: user_<name>="<password>" for each user it accepts; with an
# argument, also the credentials the broker itself logs in with on that listener.
jaas() {
  local own="$1" users="" pair
  if [[ "$KAFKA_ACLS" == 1 ]]; then
    for pair in ${KAFKA_ROLE_PASSWORDS//,/ }; do users+=" user_${pair%%:*}=\"${pair#*:}\""; done
  else
    users=" user_$KAFKA_SASL_USERNAME=\"$KAFKA_SASL_PASSWORD\""
  fi
  echo "org.apache.kafka.common.security.plain.PlainLoginModule required${own}${users};"
}

role_password() {
  local pair
  for pair in ${KAFKA_ROLE_PASSWORDS//,/ }; do
    if [[ "${pair%%:*}" == "$1" ]]; then echo "${pair#*:}"; return 0; fi
  done
  die "KAFKA_ROLE_PASSWORDS has no password for role $1"
}

write_properties() {
  # The JAAS values are quoted strings inside a properties file: refuse characters that would
  # break them rather than start a broker with a mangled user.
  [[ "$KAFKA_SASL_USERNAME" =~ ^[A-Za-z0-9._-]+$ ]] \
    || die "KAFKA_SASL_USERNAME may only contain letters, digits, '.', '_' and '-'"
  [[ "$KAFKA_SASL_PASSWORD" != *[\"\\]* && -n "$KAFKA_SASL_PASSWORD" ]] \
    || die "KAFKA_SASL_PASSWORD must be non-empty and contain no '\"' or '\\'"
  [[ "$KAFKA_ROLE_PASSWORDS" =~ ^([A-Za-z0-9_-]+:[A-Za-z0-9._-]+,?)+$ ]] \
    || die "KAFKA_ROLE_PASSWORDS must read role:password,role:password (letters, digits, '.', '_', '-')"

  # With ACLs no listener may be unauthenticated (its principal, ANONYMOUS, would have to be a
  # super user for the controller's sake): the broker's own traffic logs in as admin.
  local internal=PLAINTEXT
  [[ "$KAFKA_ACLS" == 1 ]] && internal=SASL_PLAINTEXT
  local listeners="INTERNAL://localhost:$PORT,CONTROLLER://localhost:$CONTROLLER_PORT"
  local protocols="INTERNAL:$internal,CONTROLLER:$internal"
  local name port
  for name in SASL_PLAINTEXT SSL SASL_SSL; do
    case $name in
      SASL_PLAINTEXT) port="$SASL_PORT" ;;
      SSL) port="$SSL_PORT" ;;
      SASL_SSL) port="$SASL_SSL_PORT" ;;
    esac
    [[ -n "$port" ]] || continue
    listeners+=",$name://localhost:$port"
    protocols+=",$name:$name"
  done
  # Upstream's 4.x server.properties also advertises the controller listener; we do the same.
  local advertised="$listeners"
  # A static quorum: every node is a voter (storage is formatted without --standalone).
  local voters="" i
  for i in $NODE_IDS; do voters+="${voters:+,}$i@localhost:$(node_port "$KAFKA_CONTROLLER_PORT" "$i")"; done
  # Internal topics (group offsets, transaction state): on one node one replica; on a cluster
  # three (or all nodes, if fewer), two in sync, so that losing one node loses no commit.
  local internal_replicas=$(( KAFKA_NODES < 3 ? KAFKA_NODES : 3 ))
  local internal_min_isr=$(( KAFKA_NODES < 3 ? 1 : 2 ))

  # The file holds passwords: create it private before writing.
  (umask 077 && : >"$PROPS")
  cat >"$PROPS" <<EOF
# Generated by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=$NODE
controller.quorum.voters=$voters
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
# Bound to localhost only.
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR

offsets.topic.replication.factor=$internal_replicas
transaction.state.log.replication.factor=$internal_replicas
transaction.state.log.min.isr=$internal_min_isr
share.coordinator.state.topic.replication.factor=$internal_replicas
share.coordinator.state.topic.min.isr=$internal_min_isr
# Fast tests: no 3 s wait before the first consumer-group rebalance, one offsets partition (so
# one node is every group's coordinator: the one kafka.sh status names, and the failover tests kill).
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=1
# The project creates its topics explicitly; typos should fail, not create topics.
auto.create.topics.enable=false

# SASL listeners: mechanism PLAIN.
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$(jaas "")
listener.name.sasl_ssl.plain.sasl.jaas.config=$(jaas "")
EOF
  if (( KAFKA_NODES > 1 )); then
    cat >>"$PROPS" <<EOF

# One transaction-state partition, as for group offsets: one node is every transactional
# producer's coordinator.
transaction.state.log.num.partitions=1
EOF
  fi
  if [[ -n "$SSL_PORT$SASL_SSL_PORT" ]]; then
    ensure_tls
    cat >>"$PROPS" <<EOF

# TLS listeners: the broker's key and certificate chain in one PEM file; no client certificates.
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker.pem
ssl.client.auth=none
EOF
  fi
  if [[ "$KAFKA_ACLS" == 1 ]]; then
    local own
    own=" username=\"admin\" password=\"$(role_password admin)\""
    cat >>"$PROPS" <<EOF

# Access control: KRaft's StandardAuthorizer. Only admin is a super user, and nothing is allowed
# that an ACL does not allow. The broker's own connections log in as admin.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.internal.plain.sasl.jaas.config=$(jaas "$own")
listener.name.controller.plain.sasl.jaas.config=$(jaas "$own")
EOF
  fi
}

# Format the KRaft storage once. The cluster id is generated once and kept in the state dir;
# --ignore-formatted makes a repeated format a no-op, and the meta.properties check skips the
# extra JVM launch on normal restarts.
ensure_formatted() {
  if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
    mkdir -p "$(dirname "$CLUSTER_ID_FILE")"
    java_run kafka.tools.StorageTool random-uuid >"$CLUSTER_ID_FILE.tmp" 2>>"$LOG_DIR/format.log" \
      || die "could not generate a cluster id (see $LOG_DIR/format.log)"
    mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
  fi
  if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
    java_run kafka.tools.StorageTool format --ignore-formatted \
      -t "$(cat "$CLUSTER_ID_FILE")" -c "$PROPS" >>"$LOG_DIR/format.log" 2>&1 \
      || { tail -n 30 "$LOG_DIR/format.log" >&2; die "formatting $DATA_DIR failed"; }
  fi
}

# --- commands --------------------------------------------------------------------------------

# The selected node's name in messages: "the broker" alone, "node i" in a cluster.
node_name() { if (( KAFKA_NODES > 1 )); then echo "node $NODE"; else echo "the broker"; fi; }

# Launch the selected node's JVM unless it runs already. Sets LAUNCHED_PID and LAUNCHED_OFFSET
# (the pid to wait for and where its run's log starts; empty when the node was up).
launch_node() {
  LAUNCHED_PID="" LAUNCHED_OFFSET=""
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]] && port_open "$PORT"; then
    log "$(node_name) already running on localhost:$PORT (pid $pid)"
    return 0
  fi
  if [[ -n "$pid" ]]; then
    # Our JVM is alive but not answering yet (e.g. started by a concurrent call): just wait.
    log "$(node_name) (pid $pid) is starting; waiting for it"
    LAUNCHED_PID="$pid" LAUNCHED_OFFSET="$(cat "$OFFSET_FILE" 2>/dev/null || echo 0)"
    return 0
  fi

  local port
  for port in "$PORT" "$CONTROLLER_PORT" $SASL_PORT $SSL_PORT $SASL_SSL_PORT; do
    if port_open "$port"; then
      die "port $port is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_SASL_PORT)"
    fi
  done

  mkdir -p "$DATA_DIR" "$LOG_DIR"
  write_properties
  ensure_formatted

  # Readiness is judged only on log lines written after this offset (server.log is appended to
  # across restarts); saved so that a concurrent `start` can wait on the same run.
  local log_offset=0
  [[ -f "$SERVER_LOG" ]] && log_offset="$(stat -c %s "$SERVER_LOG")"
  echo "$log_offset" >"$OFFSET_FILE"

  # setsid + nohup: the broker gets its own session and survives the shell that started it.
  # The inner bash writes its own pid, then execs java, so the pid file holds the JVM's pid.
  rm -f "$PID_FILE"
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    java -Xmx"$KAFKA_HEAP" -Xms"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$LIB_DIR/*" kafka.Kafka "$PROPS" \
    >"$LOG_DIR/console.out" 2>&1 </dev/null &
  local launcher=$!

  # The pid file appears almost at once; fall back to the launcher's pid (same process: exec).
  local i
  for i in {1..20}; do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
  pid="$(cat "$PID_FILE" 2>/dev/null || echo "$launcher")"
  echo "$pid" >"$PID_FILE"
  LAUNCHED_PID="$pid" LAUNCHED_OFFSET="$log_offset"
}

# Start every node that is down, then wait for each: a cluster's nodes must all be launched
# before any can finish starting (a controller needs a majority of the quorum).
cmd_start() {
  require_cmd java "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)"
  mkdir -p "$LOG_DIR"
  ensure_lib
  local i pid offset entry waiting=()
  for i in $NODE_IDS; do
    select_node "$i"
    launch_node
    if [[ -n "$LAUNCHED_PID" ]]; then waiting+=("$i:$LAUNCHED_PID:$LAUNCHED_OFFSET"); fi
  done
  for entry in "${waiting[@]}"; do
    IFS=: read -r i pid offset <<<"$entry"
    select_node "$i"
    wait_ready "$pid" "$offset"
  done
  if (( KAFKA_NODES > 1 )); then
    log "cluster of $KAFKA_NODES nodes: KAFKA_BOOTSTRAP_SERVERS=$(bootstrap_servers)"
  fi
}

# Wait until the selected node's PLAINTEXT port accepts connections and its log (after byte
# offset $2) says "Kafka Server started"; fail early with the log tail if the JVM ($1) dies.
wait_ready() {
  local pid="$1" offset="$2" start=$SECONDS
  while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      echo "kafka: error: $(node_name) exited during startup; last 30 log lines ($SERVER_LOG):" >&2
      tail -c +"$((offset + 1))" "$SERVER_LOG" 2>/dev/null | tail -n 30 >&2 || true
      # JVM-level failures (bad heap size, missing class) never reach log4j; they are here.
      if [[ -s "$LOG_DIR/console.out" ]]; then
        echo "kafka: JVM output ($LOG_DIR/console.out):" >&2
        tail -n 30 "$LOG_DIR/console.out" >&2
      fi
      exit 1
    fi
    # No `grep -q`: it would exit at the first match, tail would die of SIGPIPE, and pipefail
    # would turn the match into a failure.
    if port_open "$PORT" \
       && tail -c +"$((offset + 1))" "$SERVER_LOG" 2>/dev/null | grep -F "Kafka Server started" >/dev/null; then
      if (( KAFKA_NODES > 1 )); then log "node $NODE started on localhost:$PORT (pid $pid)"
      else log "started on localhost:$PORT (pid $pid)"; fi
      return 0
    fi
    if (( SECONDS - start >= KAFKA_START_TIMEOUT )); then
      echo "kafka: error: $(node_name) not ready after ${KAFKA_START_TIMEOUT}s (pid $pid still running; see $SERVER_LOG)" >&2
      exit 1
    fi
    sleep 0.5
  done
}

# SIGTERM every node at once (one by one, the last ones would wait for a quorum that is gone),
# then SIGKILL whatever is still up after 30 s.
cmd_stop() {
  local i pid entry n alive pids=()
  for i in $NODE_IDS; do
    select_node "$i"
    pid="$(running_pid)"
    [[ -n "$pid" ]] || continue
    # SIGTERM triggers Kafka's clean shutdown (flushes logs, no recovery on next start).
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$i:$pid")
  done
  if (( ${#pids[@]} == 0 )); then
    log "not running"
    return 0
  fi
  for n in $(seq 1 60); do
    alive=0
    for entry in "${pids[@]}"; do if kill -0 "${entry#*:}" 2>/dev/null; then alive=1; fi; done
    (( alive )) || break
    sleep 0.5
  done
  for entry in "${pids[@]}"; do
    i="${entry%%:*}" pid="${entry#*:}"
    select_node "$i"
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not stop within 30s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    rm -f "$PID_FILE"
    if (( KAFKA_NODES > 1 )); then log "node $i stopped (pid $pid)"; else log "stopped (pid $pid)"; fi
  done
}

# SIGKILL node $1: no clean shutdown, as when its machine fails.
cmd_kill() {
  local node="$1"
  [[ "$node" =~ ^[1-9]$ ]] && (( node <= KAFKA_NODES )) \
    || die "kill needs a node number from 1 to $KAFKA_NODES (KAFKA_NODES=$KAFKA_NODES), got '$node'"
  select_node "$node"
  local pid i
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    log "$(node_name) is not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  for i in {1..50}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PID_FILE"
  log "$(node_name) killed (pid $pid)"
}

# The address of a node that is up, for the admin tools; empty if none is.
any_bootstrap() {
  local i
  for i in $NODE_IDS; do
    select_node "$i"
    if [[ -n "$(running_pid)" ]] && port_open "$PORT"; then echo "localhost:$PORT"; return 0; fi
  done
}

# Run one of Kafka's admin tools (the kafka-tools jar) against a node that is up.
admin_tool() {
  local bootstrap class="$1"
  shift
  bootstrap="$(any_bootstrap)"
  [[ -n "$bootstrap" ]] || die "no node is up"
  java -Xmx256m -cp "$LIB_DIR/*" -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
    "$class" --bootstrap-server "$bootstrap" "$@"
}

cmd_status() {
  local i pid up=0
  for i in $NODE_IDS; do
    select_node "$i"
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
      if (( KAFKA_NODES > 1 )); then log "node $i: down (localhost:$PORT)"; else log "not running"; fi
    elif port_open "$PORT"; then
      up=$((up + 1))
      if (( KAFKA_NODES > 1 )); then log "node $i: up on localhost:$PORT (pid $pid)"
      else log "running on localhost:$PORT (pid $pid)"; fi
    else
      log "$(node_name) is running (pid $pid), but localhost:$PORT is not accepting connections yet"
    fi
  done
  (( up > 0 )) || return 3
  (( KAFKA_NODES > 1 )) || return 0
  # Who leads what: the quorum's leader is the active controller; the leaders of the offsets and
  # transaction-state partitions are the group and transaction coordinators.
  local quorum leader described
  quorum="$(admin_tool org.apache.kafka.tools.MetadataQuorumCommand describe --status 2>/dev/null || true)"
  leader="$(sed -n 's/^LeaderId:[[:space:]]*\([0-9]*\).*/\1/p' <<<"$quorum")"
  log "active controller: node ${leader:-unknown}"
  described="$(admin_tool org.apache.kafka.tools.TopicCommand --describe 2>/dev/null || true)"
  awk '
    /Partition:/ {
      for (f = 1; f <= NF; f++) {
        if ($f == "Topic:") topic = $(f + 1)
        if ($f == "Leader:") leader = $(f + 1)
      }
      if (topic == "__consumer_offsets") groups = leader
      else if (topic == "__transaction_state") transactions = leader
      else { led[leader]++; total++ }
    }
    END {
      printf "kafka: group coordinator: node %s; transaction coordinator: node %s\n",
        (groups == "" ? "none yet" : groups), (transactions == "" ? "none yet" : transactions)
      for (node in led) printf "kafka: node %s leads %d of %d partitions\n", node, led[node], total
    }' <<<"$described"
}

# Reassign every partition of topic $1 to $2 replicas: its current leader first, then the next
# nodes round the cluster. Waits until the new replicas have caught up.
cmd_replicate() {
  local topic="$1" factor="$2"
  [[ -n "$topic" && "$factor" =~ ^[1-9]$ ]] || die "usage: $0 replicate TOPIC REPLICAS"
  (( factor <= KAFKA_NODES )) || die "a topic cannot have $factor replicas on $KAFKA_NODES node(s)"
  local described plan="$STATE_DIR/reassign-$topic.json" i
  described="$(admin_tool org.apache.kafka.tools.TopicCommand --describe --topic "$topic" 2>&1)" \
    || die "cannot describe topic $topic: $(tail -n 1 <<<"$described")"
  awk -v nodes="$KAFKA_NODES" -v factor="$factor" -v topic="$topic" '
    /Partition:/ {
      for (f = 1; f <= NF; f++) {
        if ($f == "Partition:") partition = $(f + 1)
        if ($f == "Leader:") leader = $(f + 1)
      }
      if (leader !~ /^[0-9]+$/) leader = 1
      replicas = leader
      for (k = 1; k < factor; k++) replicas = replicas "," ((leader - 1 + k) % nodes + 1)
      parts = parts (parts == "" ? "" : ",") "{\"topic\":\"" topic "\",\"partition\":" partition ",\"replicas\":[" replicas "]}"
    }
    END { print "{\"version\":1,\"partitions\":[" parts "]}" }' <<<"$described" >"$plan"
  admin_tool org.apache.kafka.tools.reassign.ReassignPartitionsCommand --reassignment-json-file "$plan" --execute \
    >"$LOG_DIR/reassign.log" 2>&1 || { tail -n 20 "$LOG_DIR/reassign.log" >&2; die "reassigning $topic failed"; }
  for i in $(seq 1 120); do
    if admin_tool org.apache.kafka.tools.reassign.ReassignPartitionsCommand --reassignment-json-file "$plan" \
         --verify 2>/dev/null | grep -F "is still in progress" >/dev/null; then
      sleep 1
    else
      log "topic $topic: $factor replicas per partition"
      return 0
    fi
  done
  die "reassigning $topic did not finish within 120 s (see: $0 status)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop; cmd_start ;;
  kill) cmd_kill "${2:-}" ;;
  replicate) cmd_replicate "${2:-}" "${3:-}" ;;
  *)
    echo "usage: $0 start|stop|status|restart|kill N|replicate TOPIC REPLICAS" >&2
    exit 1
    ;;
esac
