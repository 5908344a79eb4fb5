package opsgate.govern.scaling_test

import data.opsgate.govern.scaling
import data.opsgate.testdata

# the frontend: min_replicas 2, max_replicas 5
_ctx := testdata.context([])

_scale(to) := {"type": "scale", "to": to}

_verdict(operation) := testdata.enforce(testdata.request(operation))

# --- the rules, queried directly -------------------------------------------------

test_findings_within_limits_both_ends_included if {
	every to in [2, 3, 5] {
		scaling.findings(_scale(to), _ctx) == {{
			"order": [2, 0],
			"tier": "allow",
			"reason": sprintf("%d replicas is within min_replicas 2 and max_replicas 5", [to]),
			"rule": "opsgate.govern.scaling.within_limits",
			"refs": ["spec.scaling.min_replicas", "spec.scaling.max_replicas"],
			"suggestion": null,
		}}
	}
}

test_findings_above_maximum_asks_approval if {
	scaling.findings(_scale(6), _ctx) == {{
		"order": [1, 0],
		"tier": "approve",
		"reason": "needs 6 replicas, above max_replicas 5",
		"rule": "opsgate.govern.scaling.above_maximum",
		"refs": ["spec.scaling.max_replicas"],
		"suggestion": null,
	}}
}

test_findings_below_minimum_asks_approval if {
	scaling.findings(_scale(1), _ctx) == {{
		"order": [1, 0],
		"tier": "approve",
		"reason": "needs 1 replicas, below min_replicas 2",
		"rule": "opsgate.govern.scaling.below_minimum",
		"refs": ["spec.scaling.min_replicas"],
		"suggestion": null,
	}}
}

test_findings_to_zero_is_forbidden_and_not_also_below_minimum if {
	scaling.findings(_scale(0), _ctx) == {{
		"order": [0, 0],
		"tier": "forbid",
		"reason": "scaling to 0 replicas takes the service down",
		"rule": "opsgate.govern.scaling.to_zero",
		"refs": ["spec.scaling.min_replicas"],
		"suggestion": {
			"text": "keep min_replicas >= 1: scale to min_replicas 2 instead",
			"operation": {"type": "scale", "to": 2},
		},
	}}
}

test_findings_read_the_blueprint_limits if {
	ctx := object.union(_ctx, {"blueprint": {"spec": {"scaling": {"min_replicas": 1, "max_replicas": 2}}}})
	[f.rule | some f in scaling.findings(_scale(1), ctx)] == ["opsgate.govern.scaling.within_limits"]
	[f.rule | some f in scaling.findings(_scale(3), ctx)] == ["opsgate.govern.scaling.above_maximum"]
}

test_findings_of_other_operation_types_are_empty if {
	scaling.findings({"type": "restart_pod", "pod": "frontend-1"}, _ctx) == set()
}

# --- through enforce ---------------------------------------------------------------

test_scale_tiers_by_replica_limits if {
	every case in [
		{"to": 2, "tier": "allow", "rule": "opsgate.govern.scaling.within_limits"},
		{"to": 5, "tier": "allow", "rule": "opsgate.govern.scaling.within_limits"},
		{"to": 6, "tier": "approve", "rule": "opsgate.govern.scaling.above_maximum"},
		{"to": 1, "tier": "approve", "rule": "opsgate.govern.scaling.below_minimum"},
		{"to": 0, "tier": "forbid", "rule": "opsgate.govern.scaling.to_zero"},
	] {
		verdict := _verdict({"type": "scale", "to": case.to})
		verdict.tier == case.tier
		verdict.rules[0] == case.rule
	}
}

test_scale_to_zero_forbidden_with_suggestion if {
	verdict := _verdict({"type": "scale", "to": 0})
	verdict.tier == "forbid"
	verdict.suggestion == {
		"text": "keep min_replicas >= 1: scale to min_replicas 2 instead",
		"operation": {"type": "scale", "to": 2},
	}
	verdict.reasons[0] == "scaling to 0 replicas takes the service down"
}
