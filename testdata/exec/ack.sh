#!/bin/sh
# An exec brain in shell (docs/EXEC.md): it answers every message with a
# NOTIFY to its sender, and counts what it has seen in its state. It reads
# the one line of JSON parley gives it with grep; a real brain would use jq.
input=$(cat)
event=$(printf '%s' "$input" | grep -o '"event":"[a-z]*"' | cut -d'"' -f4)
count=$(printf '%s' "$input" | grep -o '"seen":[0-9]*' | cut -d: -f2)
count=$(( ${count:-0} + 1 ))
if [ "$event" != "message" ]; then
	printf '{"send": [], "state": {"seen": %d}}\n' "$count"
	exit 0
fi
from=$(printf '%s' "$input" | grep -o '"from":"[a-z0-9-]*"' | head -n 1 | cut -d'"' -f4)
verb=$(printf '%s' "$input" | grep -o '"verb":"[A-Z]*"' | head -n 1 | cut -d'"' -f4)
printf '{"send": [{"to": "%s", "verb": "NOTIFY", "subject": "Got your %s; that makes %d."}], "state": {"seen": %d}}\n' "$from" "$verb" "$count" "$count"
