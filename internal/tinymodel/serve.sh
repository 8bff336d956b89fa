#!/usr/bin/env bash
# A real Ollama server, offline: start the server built by `make ollama-server`
# on a free loopback port, with its HOME and OLLAMA_MODELS in a temporary
# directory, load the tiny random model into it as parley-tiny, and then
# either check that /api/chat answers under a JSON schema (no command given:
# make ollama-smoke) or run the command with PARLEY_OLLAMA_HOST and
# PARLEY_OLLAMA_MODEL naming it (make e2e-ollama). Everything is removed at
# the end.
#
#	internal/tinymodel/serve.sh path/to/ollama [command...]
set -euo pipefail
ollama=$(realpath "${1:?usage: serve.sh path/to/ollama [command...]}")
shift
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

(cd "$here/../.." && go run ./internal/tinymodel -o "$tmp/tiny.gguf" -seed 1)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host="127.0.0.1:$port"
# Only the server's own environment moves: the command keeps the user's
# HOME, and with it Go's caches.
server() { HOME="$tmp/home" OLLAMA_MODELS="$tmp/models" OLLAMA_HOST="$host" "$ollama" "$@"; }
mkdir -p "$tmp/home" "$tmp/models"
# Started directly, not through the function, so that $! is the server
# itself and the trap stops it (a function in the background is a subshell,
# and killing that would leave the server running).
HOME="$tmp/home" OLLAMA_MODELS="$tmp/models" OLLAMA_HOST="$host" "$ollama" serve >"$tmp/serve.log" 2>&1 &
pid=$!
up() { curl -sf "http://$host/api/version" >/dev/null; }
for _ in $(seq 100); do
	up && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
	sleep 0.1
done
up || { cat "$tmp/serve.log" >&2; echo "serve.sh: the server did not answer on $host within 10 s" >&2; exit 1; }

cat >"$tmp/Modelfile" <<MODELFILE
FROM $tmp/tiny.gguf
TEMPLATE """{{- range .Messages }}{{ .Role }}: {{ .Content }}
{{ end }}assistant: """
MODELFILE
server create parley-tiny -f "$tmp/Modelfile" >"$tmp/create.log" 2>&1 || { cat "$tmp/create.log" >&2; exit 1; }

if [ $# -gt 0 ]; then
	status=0
	PARLEY_OLLAMA_HOST="$host" PARLEY_OLLAMA_MODEL=parley-tiny "$@" || status=$?
	[ $status -eq 0 ] || { echo "serve.sh: the server's log:" >&2; tail -n 40 "$tmp/serve.log" >&2; }
	exit $status
fi

answer=$(curl -sf "http://$host/api/chat" -d '{
  "model": "parley-tiny", "stream": false,
  "messages": [{"role": "user", "content": "Quote 10 widgets."}],
  "format": {"type": "object", "required": ["verb"],
             "properties": {"verb": {"type": "string", "enum": ["QUOTE", "DECLINE"]}}},
  "options": {"seed": 7, "temperature": 0.7, "num_predict": 64}}')
echo "$answer"
python3 - "$answer" <<'PY'
import json, sys
a = json.loads(sys.argv[1])
assert a["done"], a
if a["done_reason"] == "stop":
    verb = json.loads(a["message"]["content"])["verb"]
    assert verb in ("QUOTE", "DECLINE"), verb
print("ollama-smoke: a real server answered /api/chat under the schema (%s)" % a["done_reason"])
PY
