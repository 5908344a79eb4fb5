package opsgate.govern.safety_test

import data.opsgate.govern.safety
import data.opsgate.testdata

_request(operation, state, now) := object.union(testdata.request(operation), {"state": state, "now": now})

_scale := {"type": "scale", "to": 3}

_state(last) := {"last_operation_at": last, "consecutive_failures": 0, "breaker_open": false}

test_breaker_open_forbids_every_operation if {
	every operation in [
		_scale,
		{"type": "restart_pod", "pod": "frontend-1"},
		{"type": "update_configmap", "name": "frontend-config", "changes": {"LOG_LEVEL": "INFO"}},
		{"type": "rollback"},
	] {
		verdict := testdata.enforce(_request(operation, {"breaker_open": true}, "2026-02-10T12:00:00Z"))
		verdict.tier == "forbid"
		"circuit breaker open: human reset required" in verdict.reasons
		"opsgate.govern.safety.breaker_open" in verdict.rules
		verdict.suggestion.text == "investigate, then run: opsgate breaker reset frontend --key PATH --reason TEXT"
	}
}

test_breaker_flag_that_is_not_a_boolean_counts_as_open if {
	verdict := testdata.enforce(_request(_scale, {"breaker_open": "no"}, "2026-02-10T12:00:00Z"))
	verdict.tier == "forbid"
}

test_breaker_open_in_decide_forbids_computed_operations if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 90),
		testdata.set("/state/breaker_open", true),
	])
	[decision] := document.decisions
	decision.tier == "forbid"
	decision.reasons[0] == "cpu 90% > scale_up_threshold_percent 80%"
}

_is_open(ctx) if safety.breaker_reason(ctx)

else := false

test_breaker_opens_at_the_threshold_of_consecutive_failures if {
	# frontend's circuit_breaker_threshold is 3: the policies decide, from the count
	every case in [
		{"failures": 2, "open": false},
		{"failures": 3, "open": true},
		{"failures": 9, "open": true},
	] {
		ctx := testdata.context([testdata.set("/state/consecutive_failures", case.failures)])
		_is_open(ctx) == case.open
	}
	verdict := testdata.enforce(_request(_scale, {"breaker_open": false, "consecutive_failures": 3}, "2026-02-10T12:00:00Z"))
	verdict.tier == "forbid"
	verdict.reasons[0] == "circuit breaker open: 3 consecutive failures reached circuit_breaker_threshold 3: human reset required"
	verdict.rules[0] == "opsgate.govern.safety.breaker_open"
}

test_breaker_below_the_threshold_lets_operations_through if {
	verdict := testdata.enforce(_request(_scale, {"breaker_open": false, "consecutive_failures": 2}, "2026-02-10T12:00:00Z"))
	verdict.tier == "allow"
}

test_breaker_halted_says_so_whatever_the_count if {
	ctx := testdata.context([testdata.set("/state", {"breaker_open": true, "consecutive_failures": 5})])
	safety.breaker_reason(ctx) == "circuit breaker open: human reset required"
}

test_cooldown_defers_allowed_operations if {
	verdict := testdata.enforce(_request(_scale, _state("2026-02-10T11:58:00Z"), "2026-02-10T12:00:00Z"))
	verdict.tier == "defer"
	verdict.reasons[count(verdict.reasons) - 1] == "last operation 120s ago, within cooldown_seconds 300"
	verdict.rules[count(verdict.rules) - 1] == "opsgate.govern.safety.cooldown"
	"spec.scaling.cooldown_seconds" in verdict.blueprint_refs
}

test_cooldown_ends_exactly_at_cooldown_seconds if {
	testdata.enforce(_request(_scale, _state("2026-02-10T11:55:00Z"), "2026-02-10T12:00:00Z")).tier == "allow"
	testdata.enforce(_request(_scale, _state("2026-02-10T11:55:01Z"), "2026-02-10T12:00:00Z")).tier == "defer"
}

test_cooldown_leaves_approve_and_forbid_alone if {
	recent := _state("2026-02-10T11:59:00Z")
	approve := testdata.enforce(_request({"type": "scale", "to": 9}, recent, "2026-02-10T12:00:00Z"))
	approve.tier == "approve"
	not "opsgate.govern.safety.cooldown" in approve.rules
	testdata.enforce(_request({"type": "scale", "to": 0}, recent, "2026-02-10T12:00:00Z")).tier == "forbid"
}

test_unknown_times_defer_when_there_was_a_last_operation if {
	every case in [
		{"last": "2026-02-10T11:00:00Z", "now": "yesterday"},
		{"last": "an hour ago", "now": "2026-02-10T12:00:00Z"},
		{"last": "2026-02-10T11:00:00Z", "now": null},
	] {
		verdict := testdata.enforce(_request(_scale, _state(case.last), case.now))
		verdict.tier == "defer"
		"opsgate.govern.safety.unknown_time" in verdict.rules
	}
}

test_no_last_operation_means_no_cooldown if {
	testdata.enforce(_request(_scale, _state(null), "not a time")).tier == "allow"
}

test_dry_run_marks_decisions_and_keeps_tiers if {
	compiled := testdata.frontend_with([{"op": "replace", "path": "/governance/safety/dry_run", "value": true}])
	document := testdata.decide_with([testdata.set("/metrics/cpu_percent", 90)], compiled)
	document.dry_run == true
	[decision] := document.decisions
	decision.dry_run == true
	decision.tier == "allow"
	verdict := testdata.enforce_with(testdata.request({"type": "scale", "to": 0}), compiled)
	verdict.dry_run == true
	verdict.tier == "forbid"
}

test_dry_run_on_a_quiet_service if {
	compiled := testdata.frontend_with([{"op": "replace", "path": "/governance/safety/dry_run", "value": true}])
	testdata.decide_with([], compiled).dry_run == true
}

# --- the rules, queried directly -------------------------------------------------

# the frontend: cooldown_seconds 300; the stable observation's now is 12:00:00
_ctx(changes) := testdata.context(changes)

_last(at) := testdata.set("/state/last_operation_at", at)

test_findings_none_while_the_breaker_is_closed if {
	safety.findings(_ctx([])) == set()
}

test_findings_breaker_open if {
	safety.findings(_ctx([testdata.set("/state/breaker_open", true)])) == {{
		"order": [0, 2],
		"tier": "forbid",
		"reason": "circuit breaker open: human reset required",
		"rule": "opsgate.govern.safety.breaker_open",
		"refs": ["governance.safety.circuit_breaker_threshold"],
		"suggestion": {
			"text": "investigate, then run: opsgate breaker reset frontend --key PATH --reason TEXT",
			"operation": null,
		},
	}}
}

test_postponements_none_without_history if {
	safety.postponements(_ctx([])) == set()
}

test_postponements_cooldown if {
	safety.postponements(_ctx([_last("2026-02-10T11:58:00Z")])) == {{
		"order": [2, 2],
		"tier": "allow",
		"reason": "last operation 120s ago, within cooldown_seconds 300",
		"rule": "opsgate.govern.safety.cooldown",
		"refs": ["spec.scaling.cooldown_seconds"],
		"suggestion": null,
	}}
}

test_cooldown_boundaries if {
	safety.cooldown(_ctx([_last("2026-02-10T11:55:01Z")])).reason == "last operation 299s ago, within cooldown_seconds 300"
	not safety.cooldown(_ctx([_last("2026-02-10T11:55:00Z")]))
}

test_unknown_time if {
	every changes in [
		[_last("2026-02-10T11:58:00Z"), testdata.set("/now", "noon")],
		[_last("an hour ago")],
	] {
		{p.rule | some p in safety.postponements(_ctx(changes))} == {"opsgate.govern.safety.unknown_time"}
	}
	not safety.unknown_time(_ctx([testdata.set("/now", "noon")]))
	not safety.unknown_time(_ctx([_last("2026-02-10T11:58:00Z")]))
}

test_dry_run_is_the_blueprints if {
	safety.dry_run(_ctx([])) == false
	ctx := json.patch(_ctx([]), [{"op": "replace", "path": "/blueprint/governance/safety/dry_run", "value": true}])
	safety.dry_run(ctx) == true
}
