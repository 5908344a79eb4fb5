#!/usr/bin/env bash
# The main job on the embedded defaults: the runner over the example blueprints,
# on the simulated cluster, through a load ramp (blueprints/examples/traces/demo-ramp.csv).
# Usage: scripts/demo.sh [STATE_DIR]   (make demo runs it with build/demo-state)
set -euo pipefail
cd "$(dirname "$0")/.."
opsgate=.venv/bin/opsgate
state=${1:-build/demo-state}
rm -rf "$state"
mkdir -p "$state/keys"

# Approvals are signed: make a key for the approver sre-lead, and run on a copy
# of the blueprints that lists its public key (a team does this once, with the
# approvers' own ssh-ed25519 keys).
"$opsgate" -q approvals keygen "$state/keys/sre-lead" --name sre-lead >/dev/null
.venv/bin/python -c '
import sys
from pathlib import Path
from engine.demos import keyed_blueprints
keyed_blueprints(Path(sys.argv[1]), Path(sys.argv[2]), {"sre-lead": Path(sys.argv[3]).read_text().strip()})
' blueprints "$state/blueprints" "$state/keys/sre-lead.pub"
blueprints=$state/blueprints
run=("$opsgate" run --blueprints "$blueprints" --state-dir "$state" --load blueprints/examples/traces/demo-ramp.csv --pause 0)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Load ramps up: the runner decides, OPA allows, the frontend is scaled and verified"
"${run[@]}" --ticks 3

say "2. The backend needs a 4th replica, above max_replicas 3: an approval request"
"${run[@]}" --ticks 1
"$opsgate" approvals list --state-dir "$state"
request=$("$opsgate" approvals list --state-dir "$state" --json | .venv/bin/python -c '
import json, sys
print(next(r["id"] for r in json.load(sys.stdin) if r["service"] == "backend" and r["operation"]["type"] == "scale"))')
"$opsgate" approvals approve "$request" --key "$state/keys/sre-lead" --reason "launch traffic; the database pool was raised" --state-dir "$state"

say "3. An AI agent asks to delete the frontend deployment: forbidden, blocked, audited"
set +e
"$opsgate" -q execute --blueprints "$blueprints" --state-dir "$state" --service frontend \
  --operation '{"type": "delete_deployment", "name": "frontend"}' >/dev/null
code=$?
set -e
echo "opsgate execute exited with $code (4 = forbidden)"
test "$code" -eq 4

say "4. The approved scale runs; then a rollout goes bad: verification fails, rollback"
"${run[@]}" --ticks 3
# an operator raises the frontend's memory request within the band (allowed); the trace made
# its next rollout crash (crash_next_rollout at 300 s)
"$opsgate" execute --blueprints "$blueprints" --state-dir "$state" --service frontend --as operator \
  --operation '{"type": "adjust_resources", "resource": "memory", "field": "request", "to": "140Mi"}' >/dev/null

say "The audit trail"
"$opsgate" audit show --state-dir "$state" | grep -E "execution_succeeded|approval_(requested|granted)|blocked|verification_failed|rollback_" || true
"$opsgate" audit verify --state-dir "$state"
echo "audit log: $state/audit.jsonl"
