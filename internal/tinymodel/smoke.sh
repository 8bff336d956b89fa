#!/usr/bin/env bash
# A real Ollama server, offline: start the server built by `make ollama-server`
# on a free loopback port, with HOME and OLLAMA_MODELS in a temporary
# directory, load the tiny random model into it, and ask /api/chat for an
# answer constrained by a JSON schema. The groundwork of `make e2e-ollama`.
#
#	internal/tinymodel/smoke.sh path/to/ollama
set -euo pipefail
ollama=$(realpath "${1:?usage: smoke.sh path/to/ollama}")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# The model first, while HOME is still the user's (and so is Go's cache).
(cd "$here/../.." && go run ./internal/tinymodel -o "$tmp/tiny.gguf" -seed 1)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export HOME="$tmp/home" OLLAMA_MODELS="$tmp/models" OLLAMA_HOST="127.0.0.1:$port"
mkdir -p "$HOME" "$OLLAMA_MODELS"
"$ollama" serve >"$tmp/serve.log" 2>&1 &
pid=$!
up() { curl -sf "http://$OLLAMA_HOST/api/version" >/dev/null; }
for _ in $(seq 100); do
	up && break
	kill -0 "$pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
	sleep 0.1
done
up || { cat "$tmp/serve.log" >&2; echo "ollama-smoke: the server did not answer on $OLLAMA_HOST within 10 s" >&2; exit 1; }

cat >"$tmp/Modelfile" <<MODELFILE
FROM $tmp/tiny.gguf
TEMPLATE """{{- range .Messages }}{{ .Role }}: {{ .Content }}
{{ end }}assistant: """
MODELFILE
"$ollama" create parley-tiny -f "$tmp/Modelfile" >"$tmp/create.log" 2>&1 || { cat "$tmp/create.log" >&2; exit 1; }

answer=$(curl -sf "http://$OLLAMA_HOST/api/chat" -d '{
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
