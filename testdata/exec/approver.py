#!/usr/bin/env python3
"""An exec brain in Python (docs/EXEC.md): finance that approves any
request up to 10,000 in its currency and denies the rest, keeps a tally of
what it approved in its state, and answers a refusal by the policy with a
DENIED that says why. Money is a decimal string with its currency, never a
float."""
import json
import sys
from decimal import Decimal

step = json.load(sys.stdin)
state = step["state"] or {"approved": "0", "refused": 0}
message = step["message"]
send = []

if step["event"] == "message" and message["verb"] == "REQUEST" and message.get("amount"):
    amount, currency = message["amount"].split()
    if message.get("subject") == "crash":
        sys.exit("asked to crash")  # a test's way to make the program fail
    if Decimal(amount) <= Decimal("10000"):
        send.append({"to": message["from"], "verb": "APPROVED", "amount": message["amount"],
                     "subject": "APPROVED: " + message["amount"]})
        state["approved"] = str(Decimal(state["approved"]) + Decimal(amount))
    else:
        send.append({"to": message["from"], "verb": "DENIED", "amount": message["amount"],
                     "subject": "DENIED: above 10000 " + currency})
elif step["event"] == "denied" and message["verb"] == "APPROVED":
    state["refused"] += 1
    send.append({"to": message["to"], "verb": "DENIED", "amount": message["amount"],
                 "subject": "DENIED: " + step["decision"]["reason"]})

json.dump({"send": send, "state": state}, sys.stdout)
