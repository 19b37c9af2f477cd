# Sourced by the demo and test scripts: where the broker is, and whether it answers.
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}"

# True if the first bootstrap server accepts TCP connections.
broker_reachable() {
  local first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
  local host="${first%:*}" port="${first##*:}"
  timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}
