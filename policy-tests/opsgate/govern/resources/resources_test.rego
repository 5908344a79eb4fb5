package opsgate.govern.resources_test

import data.opsgate.govern.resources
import data.opsgate.testdata

# the frontend: cpu request 100m (observed and in the blueprint), limit 500m,
# minimum 50m; memory request 128Mi, minimum 64Mi; resource_band_percent 10
_ctx := testdata.context([])

_adjust(resource, field, to) := {"type": "adjust_resources", "resource": resource, "field": field, "to": to}

_verdict(operation) := testdata.enforce(testdata.request(operation))

_rules_and_tiers(findings) := {[f.rule, f.tier] | some f in findings}

# --- the rules, queried directly -------------------------------------------------

test_findings_exactly_at_the_band_is_within if {
	resources.findings(_adjust("cpu", "request", "90m"), _ctx) == {{
		"order": [2, 0],
		"tier": "allow",
		"reason": "cpu request 100m → 90m is a 10% change, within resource_band_percent 10%",
		"rule": "opsgate.govern.resources.within_band",
		"refs": ["spec.resources.cpu.request", "governance.resource_band_percent"],
		"suggestion": null,
	}}
}

test_findings_just_beyond_the_band_asks_approval if {
	resources.findings(_adjust("cpu", "request", "89m"), _ctx) == {{
		"order": [1, 0],
		"tier": "approve",
		"reason": "cpu request 100m → 89m is a 11% change, beyond resource_band_percent 10%",
		"rule": "opsgate.govern.resources.beyond_band",
		"refs": ["spec.resources.cpu.request", "governance.resource_band_percent"],
		"suggestion": null,
	}}
}

test_findings_below_the_minimum_forbid_and_suggest_it if {
	findings := resources.findings(_adjust("memory", "request", "32Mi"), _ctx)
	_rules_and_tiers(findings) == {
		["opsgate.govern.resources.beyond_band", "approve"],
		["opsgate.govern.resources.below_minimum", "forbid"],
	}
	some f in findings
	f.rule == "opsgate.govern.resources.below_minimum"
	f.reason == "memory request 32Mi is below spec.resources.memory.minimum 64Mi"
	f.refs == ["spec.resources.memory.minimum"]
	f.suggestion == {
		"text": "keep the memory request at or above 64Mi",
		"operation": {"type": "adjust_resources", "resource": "memory", "field": "request", "to": "64Mi"},
	}
}

test_findings_at_the_minimum_is_not_below_it if {
	findings := resources.findings(_adjust("cpu", "request", "50m"), _ctx)
	_rules_and_tiers(findings) == {["opsgate.govern.resources.beyond_band", "approve"]}
}

test_findings_request_above_the_limit_suggests_raising_it if {
	findings := resources.findings(_adjust("cpu", "request", "600m"), _ctx)
	_rules_and_tiers(findings) == {
		["opsgate.govern.resources.beyond_band", "approve"],
		["opsgate.govern.resources.above_limit", "forbid"],
	}
	some f in findings
	f.rule == "opsgate.govern.resources.above_limit"
	f.reason == "cpu request 600m is above the limit 500m"
	f.suggestion.operation == {"type": "adjust_resources", "resource": "cpu", "field": "limit", "to": "600m"}
}

test_findings_request_at_the_limit_is_not_above_it if {
	ctx := testdata.context([testdata.set("/resources/cpu/request", "460m")])
	_rules_and_tiers(resources.findings(_adjust("cpu", "request", "500m"), ctx)) == {
		["opsgate.govern.resources.within_band", "allow"],
	}
}

test_findings_limit_below_the_request if {
	findings := resources.findings(_adjust("cpu", "limit", "90m"), _ctx)
	_rules_and_tiers(findings) == {
		["opsgate.govern.resources.beyond_band", "approve"],
		["opsgate.govern.resources.limit_below_request", "forbid"],
	}
	some f in findings
	f.rule == "opsgate.govern.resources.limit_below_request"
	f.reason == "cpu limit 90m is below the request 100m"
	f.suggestion == null
}

test_findings_need_a_current_amount_above_zero if {
	ctx := testdata.context([testdata.set("/resources/cpu/request", "0m")])
	resources.findings(_adjust("cpu", "request", "90m"), ctx) == set()
}

test_findings_need_a_quantity if {
	resources.findings(_adjust("cpu", "request", "lots"), _ctx) == set()
}

test_current_is_observed_when_given_else_the_blueprints if {
	observed := testdata.context([testdata.set("/resources/cpu", {"request": "200m", "limit": "800m"})])
	resources.current(observed, "cpu", "request") == 200
	resources.current(observed, "cpu", "limit") == 800
	unobserved := testdata.context([testdata.remove("/resources")])
	resources.current(unobserved, "cpu", "request") == 100
	resources.current(unobserved, "cpu", "limit") == 500
	resources.current(unobserved, "memory", "request") == 134217728
}

# --- through enforce ---------------------------------------------------------------

test_resource_tiers if {
	every case in [
		# exactly 10% is inside the band
		{"op": _adjust("cpu", "request", "90m"), "tier": "allow", "rule": "opsgate.govern.resources.within_band"},
		{"op": _adjust("cpu", "request", "110m"), "tier": "allow", "rule": "opsgate.govern.resources.within_band"},
		{"op": _adjust("cpu", "request", "89m"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("cpu", "request", "50m"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("cpu", "request", "0.2"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("memory", "request", "120Mi"), "tier": "allow", "rule": "opsgate.govern.resources.within_band"},
		{"op": _adjust("memory", "limit", "300Mi"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("memory", "request", "60Mi"), "tier": "forbid", "rule": "opsgate.govern.resources.below_minimum"},
		{"op": _adjust("cpu", "request", "600m"), "tier": "forbid", "rule": "opsgate.govern.resources.above_limit"},
		{"op": _adjust("cpu", "limit", "90m"), "tier": "forbid", "rule": "opsgate.govern.resources.limit_below_request"},
	] {
		verdict := _verdict(case.op)
		verdict.tier == case.tier
		verdict.rules[0] == case.rule
	}
}

test_field_defaults_to_request if {
	verdict := _verdict({"type": "adjust_resources", "resource": "cpu", "to": "90m"})
	verdict.tier == "allow"
	verdict.operation.from == "100m"
}

test_memory_below_minimum_suggestion_names_the_minimum if {
	verdict := _verdict(_adjust("memory", "request", "32Mi"))
	verdict.tier == "forbid"
	verdict.reasons[0] == "memory request 32Mi is below spec.resources.memory.minimum 64Mi"
	verdict.suggestion == {
		"text": "keep the memory request at or above 64Mi",
		"operation": {"type": "adjust_resources", "resource": "memory", "field": "request", "to": "64Mi"},
	}
}

test_band_measured_from_observed_request_when_given if {
	request := object.union(
		testdata.request(_adjust("cpu", "request", "180m")),
		{"resources": {"cpu": {"request": "200m", "limit": "500m"}}},
	)
	verdict := testdata.enforce(request)
	verdict.tier == "allow"
	verdict.operation.from == "200m"
}
