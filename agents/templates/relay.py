#!/usr/bin/env python3
"""A small exec brain the templates share (docs/EXEC.md): on each message
its role acts on, it passes the work on — one message, of one verb, to one
agent — and keeps a count of what it handled.

    relay.py NEXT VERB SUBJECT [BODY]

NEXT is an agent's name, or "sender" to answer whoever sent the message.
SUBJECT and BODY may name {topic} (the subject after its last ": "),
{from}, {subject} and {body} of the message handled, and {count}."""
import json
import sys

next_agent, verb, subject = sys.argv[1], sys.argv[2], sys.argv[3]
body = sys.argv[4] if len(sys.argv) > 4 else "{body}"

step = json.load(sys.stdin)
state = step["state"] or {"handled": 0}
send = []
message = step["message"]
if step["event"] == "message":
    state["handled"] += 1
    said = {
        "topic": message.get("subject", "").rsplit(": ", 1)[-1],
        "from": message["from"],
        "subject": message.get("subject", ""),
        "body": message.get("body", "").strip(),
        "count": state["handled"],
    }
    send.append({
        "to": message["from"] if next_agent == "sender" else next_agent,
        "verb": verb,
        "subject": subject.format(**said),
        "body": body.format(**said) + "\n",
    })
json.dump({"send": send, "state": state}, sys.stdout)
