#!/usr/bin/env python3
"""A vendor written without parley's code (docs/EXEC.md): its own secret
floor, its own way of conceding, its own idea of when to stop. The tests
put parley's buyer against it, as the independent evaluation does with its
own vendor programs; none of these styles is one of parley's.

    vendor.py --style S --list 5.20 --floor 4.40 [--rounds 8] [--lead 2]

Styles:
  halfway   meets the buyer halfway between its last quote and the offer
  steps     comes down an equal step each counter-offer, over --rounds
  stubborn  holds its list price until a best-and-final round, or --rounds
            counter-offers, then drops to its floor
  mirror    comes down as much as the buyer's offer went up (a first
            step of 1% of its list price)
Whatever the style, an offer at or above its floor is taken (it quotes the
offer), and it never quotes below its floor. Money is a decimal string with
its currency, never a float."""
import argparse
import datetime
import json
import sys
from decimal import Decimal, ROUND_HALF_UP

args = argparse.ArgumentParser()
args.add_argument("--style", required=True, choices=["halfway", "steps", "stubborn", "mirror"])
args.add_argument("--list", required=True)
args.add_argument("--floor", required=True)
args.add_argument("--rounds", type=int, default=8)
args.add_argument("--lead", type=int, default=2)
opt = args.parse_args()

LIST, FLOOR = Decimal(opt.list), Decimal(opt.floor)
CENT = Decimal("0.01")

step = json.load(sys.stdin)
state = step["state"] or {}
m = step["message"]
send = []


def money(d, currency):
    return str(d.quantize(CENT, rounding=ROUND_HALF_UP)) + " " + currency


def quote(thread, price, currency):
    t = state[thread]
    t["last"] = str(price)
    return {"to": m["from"], "verb": "QUOTE", "item": m["item"], "quantity": t["quantity"],
            "unit_price": money(price, currency), "deliver_by": t["deliver_by"],
            "subject": "QUOTE: %d %s at %s each" % (t["quantity"], m["item"], money(price, currency))}


if step["event"] == "message" and m:
    thread = m["thread"]
    if m["verb"] == "REQUEST" and m.get("quantity"):
        now = datetime.datetime.fromisoformat(step["now"].replace("Z", "+00:00"))
        by = m.get("deliver_by") or (now + datetime.timedelta(days=opt.lead)).date().isoformat()
        state[thread] = {"quantity": m["quantity"], "deliver_by": by, "counters": 0, "offer": "0"}
        send.append(quote(thread, LIST, "USD"))
    elif m["verb"] == "COUNTER" and thread in state:
        t = state[thread]
        offer, currency = m["unit_price"].split()
        offer = Decimal(offer)
        last, before = Decimal(t["last"]), Decimal(t["offer"])
        t["counters"] += 1
        if offer >= FLOOR:
            price = min(offer, last)
        elif opt.style == "halfway":
            price = (last + offer) / 2
        elif opt.style == "steps":
            price = LIST - (LIST - FLOOR) * min(t["counters"], opt.rounds) / opt.rounds
        elif opt.style == "stubborn":
            final = m.get("subject", "").startswith("BEST AND FINAL") or t["counters"] >= opt.rounds
            price = FLOOR if final else LIST
        else:  # mirror
            price = last - (offer - before if before > 0 else LIST / 100)
        price = min(max(price, FLOOR), last).quantize(CENT, rounding=ROUND_HALF_UP)
        t["offer"] = str(offer)
        send.append(quote(thread, price, currency))
    elif m["verb"] == "ORDER" and thread in state:
        t = state[thread]
        for to in (m["from"], "finance"):
            send.append({"to": to, "verb": "CONFIRMED", "item": m["item"], "quantity": m["quantity"],
                         "unit_price": m["unit_price"], "amount": m["amount"], "deliver_by": t["deliver_by"],
                         "subject": "CONFIRMED: %d %s, %s" % (m["quantity"], m["item"], m["amount"])})

json.dump({"send": send, "state": state}, sys.stdout)
