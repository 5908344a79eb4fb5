package opsgate.main_test

import data.opsgate.main
import data.opsgate.testdata

# Input that breaks the contract: no decision or forbid, with a reason; never
# allow, never an evaluation error (an error would make these undefined).

test_enforce_unknown_service_is_forbidden if {
	verdict := testdata.enforce(object.union(testdata.request({"type": "scale", "to": 3}), {"service": "payments"}))
	verdict.tier == "forbid"
	verdict.reasons == [`unknown service "payments": no blueprint has that name`]
	verdict.rules == ["opsgate.main.enforcement"]
	verdict.blueprint == null
}

test_enforce_without_service_is_forbidden if {
	every request in [{"operation": {"type": "scale", "to": 3}}, {"service": 5, "operation": {"type": "scale", "to": 3}}] {
		verdict := testdata.enforce(request)
		verdict.tier == "forbid"
		verdict.reasons == ["service is missing or not a string"]
	}
}

test_enforce_input_not_an_object_is_forbidden if {
	every request in ["scale frontend", 42, null, []] {
		verdict := testdata.enforce(request)
		verdict.tier == "forbid"
		verdict.reasons == ["input is not an object"]
	}
}

test_enforce_with_bad_replicas_still_classifies_by_limits if {
	verdict := testdata.enforce(object.union(
		testdata.request({"type": "scale", "to": 3}),
		{"replicas": {"desired": -2, "ready": "x"}},
	))
	verdict.tier == "allow"
	verdict.operation == {"type": "scale", "to": 3}
}

test_decide_unknown_and_missing_service if {
	every case in [
		{"changes": [testdata.set("/service", "payments")], "note": `unknown service "payments": no blueprint has that name`},
		{"changes": [testdata.remove("/service")], "note": "service is missing or not a string"},
		{"changes": [testdata.set("/service", ["frontend"])], "note": "service is missing or not a string"},
	] {
		document := testdata.decide(case.changes)
		document.decisions == []
		document.blueprint == null
		document.notes == [case.note]
	}
}

test_decide_input_not_an_object if {
	document := main.decide with input as "frontend"
		with data.opsgate.blueprints as testdata.blueprints
		with data.opsgate.bundle as testdata.bundle
	document.notes == ["input is not an object"]
	document.service == null
}

test_decide_broken_values_are_unknown_and_noted if {
	every case in [
		{
			"changes": [testdata.set("/replicas/desired", -1), testdata.set("/metrics/cpu_percent", 95)],
			"note": "replicas.desired and replicas.ready must be whole non-negative numbers: replicas unknown",
		},
		{
			"changes": [testdata.set("/replicas", "two"), testdata.set("/metrics/cpu_percent", 95)],
			"note": "replicas.desired and replicas.ready must be whole non-negative numbers: replicas unknown",
		},
		{
			"changes": [testdata.set("/metrics/cpu_percent", "NaN")],
			"note": `metrics.cpu_percent is not a plausible measurement (got "NaN"): treated as unknown`,
		},
		{
			"changes": [testdata.set("/metrics/cpu_percent", -5)],
			"note": "metrics.cpu_percent is not a plausible measurement (got -5): treated as unknown",
		},
		{
			"changes": [testdata.set("/metrics/cpu_percent", null)],
			"note": "metrics.cpu_percent is not a plausible measurement (got null): treated as unknown",
		},
		{
			"changes": [testdata.set("/pods/0/restart_count", "many"), testdata.set("/pods/0/reason", "Error")],
			"note": "pods without a name or a whole restart_count were left out",
		},
		{
			"changes": [testdata.set("/now", "noon")],
			"note": "now is not an RFC 3339 time: cooldowns can't be measured",
		},
		{
			"changes": [testdata.set("/state/breaker_open", "maybe"), testdata.set("/metrics/cpu_percent", 95)],
			"note": "state.breaker_open is not true or false: treated as open",
		},
	] {
		document := testdata.decide(case.changes)
		case.note in document.notes
		every decision in document.decisions {
			decision.tier != "allow"
		}
	}
}

test_decide_state_missing_is_a_service_with_no_history if {
	document := testdata.decide([testdata.remove("/state"), testdata.set("/metrics/cpu_percent", 95)])
	[decision] := document.decisions
	decision.tier == "allow"
}

test_decide_state_not_an_object_is_no_history if {
	document := testdata.decide([testdata.set("/state", "fine"), testdata.set("/metrics/cpu_percent", 95)])
	[decision] := document.decisions
	decision.tier == "allow"
}

test_decide_overflowing_metric_is_unknown if {
	document := testdata.decide([testdata.set("/metrics/cpu_percent", 1e400)])
	document.decisions == []
	"metrics.cpu_percent is not a plausible measurement (got 1e400): treated as unknown" in document.notes
}
