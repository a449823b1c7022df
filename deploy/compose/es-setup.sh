#!/usr/bin/env bash
# Run once by the es-setup service when Elasticsearch is healthy (security on):
#  - the kibana_system user gets KIBANA_PASSWORD, so Kibana can connect;
#  - the role `newsmon_writer` (newsmon-writer-role.json: index templates, and everything on
#    the newsmon-* indices, nothing else); the user `newsmon` (password ES_NEWSMON_PASSWORD)
#    has only that role. Besides `monitor` (cluster health, for `newsmon doctor`) it grants
#    one cluster action, cluster:admin/analyze: `newsmon search setup` asks the server which
#    language analyzers it has with _analyze, which without an index only `manage` would
#    allow. Tested against a real Elasticsearch with security on (tests/e2e/test_secured_search.py).
# Idempotent: re-running sets the same passwords and the same role.
set -euo pipefail
: "${ES_URL:?}" "${ELASTIC_PASSWORD:?}" "${KIBANA_PASSWORD:?}" "${ES_NEWSMON_PASSWORD:?}"
role_file="${ROLE_FILE:-$(dirname "$0")/newsmon-writer-role.json}"

json_string() {  # a JSON string literal, whatever the password contains
  python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1" 2>/dev/null \
    || printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

es() {  # es METHOD PATH BODY
  curl -fsS -u "elastic:${ELASTIC_PASSWORD}" -H 'Content-Type: application/json' \
    -X "$1" "${ES_URL}$2" -d "$3" > /dev/null
}

es POST /_security/user/kibana_system/_password \
  "{\"password\": $(json_string "$KIBANA_PASSWORD")}"
es PUT /_security/role/newsmon_writer "$(cat "$role_file")"
es PUT /_security/user/newsmon \
  "{\"password\": $(json_string "$ES_NEWSMON_PASSWORD"), \"roles\": [\"newsmon_writer\"],
    \"full_name\": \"newsmon pipeline and poller\"}"
echo "es-setup: kibana_system password set; user newsmon with role newsmon_writer"
