package opsgate.govern.recovery_test

import data.opsgate.govern.recovery
import data.opsgate.testdata

_ctx := testdata.context([])

_tier(operation) := testdata.enforce(testdata.request(operation)).tier

# --- the rules, queried directly -------------------------------------------------

test_findings_restart_pod_is_allowed if {
	recovery.findings({"type": "restart_pod", "pod": "frontend-1"}, _ctx) == {{
		"order": [2, 0],
		"tier": "allow",
		"reason": "restarting pod frontend-1 is allowed (done as a rollout restart)",
		"rule": "opsgate.govern.recovery.restart",
		"refs": [],
		"suggestion": null,
	}}
}

test_findings_rollback_asks_approval_naming_the_service if {
	every case in [
		{"changes": [], "service": "frontend"},
		{"changes": [testdata.set("/service", "backend")], "service": "backend"},
	] {
		recovery.findings({"type": "rollback", "to_revision": 3}, testdata.context(case.changes)) == {{
			"order": [1, 0],
			"tier": "approve",
			"reason": sprintf("a rollback replaces the running version of %s: approval needed", [case.service]),
			"rule": "opsgate.govern.recovery.rollback",
			"refs": ["governance.approval_workflow.approvers"],
			"suggestion": null,
		}}
	}
}

test_findings_delete_pod_is_forbidden_suggesting_a_restart if {
	recovery.findings({"type": "delete_pod", "name": "frontend-2"}, _ctx) == {{
		"order": [0, 0],
		"tier": "forbid",
		"reason": "deleting pod frontend-2 is forbidden",
		"rule": "opsgate.govern.recovery.delete_pod",
		"refs": [],
		"suggestion": {
			"text": "restart pod frontend-2 instead (restart_pod)",
			"operation": {"type": "restart_pod", "pod": "frontend-2"},
		},
	}}
}

test_findings_of_other_operation_types_are_empty if {
	recovery.findings({"type": "scale", "to": 3}, _ctx) == set()
}

# --- through enforce ---------------------------------------------------------------

test_recovery_tiers if {
	_tier({"type": "restart_pod", "pod": "frontend-1"}) == "allow"
	_tier({"type": "rollback"}) == "approve"
	_tier({"type": "rollback", "to_revision": 3}) == "approve"
}

test_delete_pod_forbidden_suggesting_restart if {
	verdict := testdata.enforce(testdata.request({"type": "delete_pod", "name": "frontend-1"}))
	verdict.tier == "forbid"
	verdict.suggestion == {
		"text": "restart pod frontend-1 instead (restart_pod)",
		"operation": {"type": "restart_pod", "pod": "frontend-1"},
	}
}
