package opsgate.main_test

import data.opsgate.main
import data.opsgate.testdata

# --- the document itself -------------------------------------------------------

test_decide_stable_service_has_no_decisions if {
	testdata.decide([]) == {
		"service": "frontend",
		"blueprint": {"name": "frontend", "version": "1.0.0"},
		"bundle_revision": "test-revision",
		"dry_run": false,
		"decisions": [],
		"notes": [],
		"recommendation": {"replicas": 2},
	}
}

# a memory request far above what the recorded usage recommends
_memory_history := testdata.set("/state/history", {"usage": {"memory": testdata.usage(testdata.mebibytes(60), 70)}})

test_decide_is_deterministic if {
	changes := [testdata.set("/metrics/cpu_percent", 85), _memory_history]
	first := testdata.decide(changes)
	first == testdata.decide(changes)
	count(first.decisions) == 2
	count({d.id | some d in first.decisions}) == 2
}

test_decide_all_answers_every_service_in_order if {
	result := main.decide_all with input as {"services": [
		json.patch(testdata.observation, [testdata.set("/metrics/cpu_percent", 85)]),
		json.patch(testdata.observation, [testdata.set("/service", "backend")]),
		{"service": "nope"},
	]}
		with data.opsgate.blueprints as testdata.blueprints
		with data.opsgate.bundle as testdata.bundle
	result.bundle_revision == "test-revision"
	[s.service | some s in result.services] == ["frontend", "backend", "nope"]
	testdata.operations(result.services[0]) == [{"type": "scale", "from": 2, "to": 3}]
	result.services[1].decisions == []
	result.services[2].notes == [`unknown service "nope": no blueprint has that name`]
	result.notes == []
}

test_decide_all_needs_a_list if {
	result := main.decide_all with input as {"services": "frontend"}
		with data.opsgate.blueprints as testdata.blueprints
		with data.opsgate.bundle as testdata.bundle
	result == {
		"bundle_revision": "test-revision",
		"services": [],
		"notes": ["input.services must be a list of observations"],
	}
}

test_every_decision_names_reasons_rules_and_refs if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 85),
		_memory_history,
		testdata.set("/pods/0/reason", "CrashLoopBackOff"),
		testdata.set("/pods/0/restart_count", 1),
	])
	count(document.decisions) == 3
	every decision in document.decisions {
		count(decision.reasons) > 1
		count(decision.rules) == count(decision.reasons)
		count(decision.blueprint_refs) > 0
		decision.tier in {"allow", "approve", "forbid", "defer"}
	}
}

test_enforce_verdict_is_the_whole_contract if {
	verdict := testdata.enforce(testdata.request({"type": "scale", "to": 6}))
	object.remove(verdict, ["id"]) == {
		"operation": {"type": "scale", "from": 2, "to": 6},
		"tier": "approve",
		"reasons": ["needs 6 replicas, above max_replicas 5", "governance.agent_authority.allowed lists scale"],
		"rules": ["opsgate.govern.scaling.above_maximum", "opsgate.govern.authority.allowed"],
		"blueprint_refs": ["governance.agent_authority.allowed", "spec.scaling.max_replicas"],
		"suggestion": null,
		"service": "frontend",
		"blueprint": {"name": "frontend", "version": "1.0.0"},
		"bundle_revision": "test-revision",
		"dry_run": false,
	}
	count(verdict.id) == 16
}

# --- breaker ---------------------------------------------------------------------

test_breaker_entrypoint_decides_from_the_failure_count if {
	every case in [
		{"state": {"consecutive_failures": 2, "breaker_open": false}, "open": false},
		{"state": {"consecutive_failures": 3, "breaker_open": false}, "open": true},
		{"state": {"consecutive_failures": 0, "breaker_open": true}, "open": true},
		{"state": {}, "open": false},
	] {
		answer := main.breaker with input as {"service": "frontend", "state": case.state}
			with data.opsgate.blueprints as testdata.blueprints
			with data.opsgate.bundle as testdata.bundle
		answer.open == case.open
		answer.service == "frontend"
		answer.bundle_revision == "test-revision"
	}
}

test_breaker_entrypoint_says_why if {
	answer := main.breaker with input as {"service": "frontend", "state": {"consecutive_failures": 4}}
		with data.opsgate.blueprints as testdata.blueprints
		with data.opsgate.bundle as testdata.bundle
	answer.reason == "circuit breaker open: 4 consecutive failures reached circuit_breaker_threshold 3: human reset required"
	closed := main.breaker with input as {"service": "frontend", "state": {"consecutive_failures": 1}}
		with data.opsgate.blueprints as testdata.blueprints
		with data.opsgate.bundle as testdata.bundle
	closed.reason == null
}

test_breaker_entrypoint_is_open_for_what_it_cannot_read if {
	every request in [{"service": "nobody", "state": {}}, {"state": {}}, "frontend"] {
		answer := main.breaker with input as request
			with data.opsgate.blueprints as testdata.blueprints
			with data.opsgate.bundle as testdata.bundle
		answer.open == true
		is_string(answer.reason)
	}
}
