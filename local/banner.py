"""What `make run` prints once the stack is ready: the keys, then a curl walk-through of the whole lifecycle.

COMMANDS is also in docs/walkthrough.md, verbatim (tests/e2e/test_walkthrough_doc.py keeps the two equal),
and is written with this run's keys to <state dir>/walkthrough.sh, so `bash .local/walkthrough.sh` runs it.
"""

from __future__ import annotations

import shlex
from typing import Any

COMMANDS = r"""# JSON helper: `... | j label url` prints .label.url (python3; jq would do too)
j() { python3 -c 'import functools, json, sys; v = functools.reduce(lambda d, k: d[int(k)] if isinstance(d, list) else d[k], sys.argv[1:], json.load(sys.stdin)); print(v if isinstance(v, str) else json.dumps(v))' "$@"; }
# Poll the return (merchant view) until it reaches a status; prints the status it ended with
wait_for() {
  for _ in $(seq 30); do
    S=$(curl -s "$API/v1/returns/$RID" -H "Authorization: Bearer $MERCHANT_KEY" | j status)
    [ "$S" = "$1" ] && break; sleep 1
  done; echo "$S"
}

# 1. The customer opens a portal session with order number + email
TOKEN=$(curl -s -X POST "$API/v1/portal/merchants/demo-fashion/sessions" -H 'Content-Type: application/json' \
  -d '{"order_number": "DEMO-1001", "email": "erika@example.com"}' | j token)

# 2. ... sees the order, each item with its eligibility
curl -s "$API/v1/portal/order" -H "Authorization: Bearer $TOKEN"; echo

# 3. ... returns one shirt (too small) and the jeans (damaged): status label_created
RET=$(curl -s -X POST "$API/v1/portal/returns" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"},
                 {"line_item_id": "L2", "quantity": 1, "reason": "damaged", "comment": "seam open"}]}')
RID=$(echo "$RET" | j id); TN=$(echo "$RET" | j tracking_number); TT=$(echo "$RET" | j tracking_token)
echo "$RET" | j status
# ... and downloads the label (a presigned URL into the S3 emulation)
curl -s -o label.pdf "$(echo "$RET" | j label url)" && head -c 8 label.pdf; echo

# 4. The carrier reports through EasyPost (signed webhook): in_transit, then delivered
easypost() {
  BODY=$(printf '{"id":"evt_%s_%s","object":"Event","description":"tracker.updated","result":{"object":"Tracker","tracking_code":"%s","status":"%s","tracking_details":[{"status":"%s","datetime":"%s","message":"scan"}]}}' \
    "$TN" "$1" "$TN" "$1" "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$EASYPOST_WEBHOOK_SECRET" | awk '{print $NF}')
  # or: SIG=$(printf '%s' "$BODY" | python3 -c 'import hashlib, hmac, os, sys; print(hmac.new(os.environ["EASYPOST_WEBHOOK_SECRET"].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())')
  curl -s -X POST "$API/v1/webhooks/easypost" -H 'Content-Type: application/json' \
    -H "X-Hmac-Signature: hmac-sha256-hex=$SIG" --data-binary "$BODY"; echo
}
sleep 1; easypost in_transit; wait_for in_transit
sleep 1; easypost delivered; wait_for delivered

# 5. The warehouse scans the label's barcode: received
curl -s -X POST "$API/v1/warehouse/scans" -H "Authorization: Bearer $WAREHOUSE_KEY" \
  -H 'Content-Type: application/json' -d "{\"barcode\": \"$TN\"}" | j status

# 6. ... and submits the inspection, the jeans damaged: the guideline asks the merchant (awaiting_feedback)
curl -s -X POST "$API/v1/warehouse/returns/$RID/inspection" -H "Authorization: Bearer $WAREHOUSE_KEY" \
  -H 'Content-Type: application/json' \
  -d '{"items": [{"line_item_id": "L1", "received_quantity": 1, "checks": {"damaged": false}},
                 {"line_item_id": "L2", "received_quantity": 1, "checks": {"damaged": true}, "notes": "seam open"}]}'
echo
wait_for awaiting_feedback

# 7. The merchant approves: completed, then the automatic refund: refunded
curl -s -X POST "$API/v1/returns/$RID/feedback" -H "Authorization: Bearer $MERCHANT_KEY" \
  -H 'Content-Type: application/json' -d '{"decision": "approve"}' | j status
wait_for refunded
curl -s "$API/v1/returns/$RID" -H "Authorization: Bearer $MERCHANT_KEY" | j refund
curl -s "$API/v1/returns/$RID/refunds" -H "Authorization: Bearer $MERCHANT_KEY"; echo

# 8. Track & trace: public, by the tracking token, milestones requested .. refunded
curl -s "$API/v1/track/$TT"; echo
"""  # noqa: E501 (shell one-liners)


def keys_block(creds: dict[str, Any]) -> str:
    values = {
        "API": creds["api"],
        "OPERATOR_KEY": creds["operator_key"],
        "WAREHOUSE_KEY": creds["warehouse"]["api_key"],
        "MERCHANT_KEY": creds["merchant"]["api_key"],
        "EASYPOST_WEBHOOK_SECRET": creds["easypost_webhook_secret"],
    }
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in values.items()) + "\n"


def script(creds: dict[str, Any]) -> str:
    header = "#!/usr/bin/env bash\n# Boomerang local mode: the lifecycle walk-through.\nset -u\n"
    return header + keys_block(creds) + COMMANDS


def render(creds: dict[str, Any], credentials_path: str, script_path: str) -> str:
    orders = ", ".join(f"{o['order_number']} / {o['email']}" for o in creds["orders"])
    return f"""
Boomerang is running (local mode).
  API              {creds["api"]}   (GET /v1/health, GET /v1/openapi.json)
  AWS emulation    {creds["moto"]}   (moto; labels and photos are served from here)
  credentials      {credentials_path}
  merchant         {creds["merchant"]["slug"]} ({creds["merchant"]["id"]}); warehouse {creds["warehouse"]["id"]}
  demo orders      {orders}
  emails           also written to {creds["outbox"]} as .eml files
  receivers        merchant URLs (refund and restock webhooks, subscriptions) may be local sinks at exactly
                   http://127.0.0.1:<port>; https://127.0.0.1, [::1], [::ffff:127.0.0.1], localhost, 0.0.0.0
                   and private, link-local or metadata addresses are refused, as in production

Keys (paste into your shell):
{keys_block(creds)}
The lifecycle with curl (the same commands are in docs/walkthrough.md; run them all with `bash {script_path}`):

{COMMANDS}
Stop with Ctrl-C.
"""
