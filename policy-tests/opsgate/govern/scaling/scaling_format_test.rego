package opsgate.govern.scaling_test

import data.opsgate.testdata

# JSON has one kind of number: 4.0 is a whole number (the parameter checks
# accept it), and a reason reads "4 replicas", never "%!d(float64=4)".

_float_limits_compiled := testdata.frontend_with([
	testdata.set("/spec/scaling/min_replicas", 2.0),
	testdata.set("/spec/scaling/max_replicas", 5.0),
])

test_scale_reasons_read_whole_numbers_written_as_floats if {
	every case in [
		{"to": 4.0, "tier": "allow", "reason": "4 replicas is within min_replicas 2 and max_replicas 5"},
		{"to": 5.0, "tier": "allow", "reason": "5 replicas is within min_replicas 2 and max_replicas 5"},
		{"to": 6.0, "tier": "approve", "reason": "needs 6 replicas, above max_replicas 5"},
		{"to": 1.0, "tier": "approve", "reason": "needs 1 replicas, below min_replicas 2"},
	] {
		every compiled in [testdata.blueprints, _float_limits_compiled] {
			verdict := testdata.enforce_with(testdata.request({"type": "scale", "to": case.to}), compiled)
			verdict.tier == case.tier
			verdict.reasons[0] == case.reason
		}
	}
}

test_scale_to_zero_written_as_float_suggests_a_whole_minimum if {
	verdict := testdata.enforce_with(testdata.request({"type": "scale", "to": 0.0}), _float_limits_compiled)
	verdict.tier == "forbid"
	verdict.reasons[0] == "scaling to 0 replicas takes the service down"
	verdict.suggestion.text == "keep min_replicas >= 1: scale to min_replicas 2 instead"
}

test_scale_to_a_fraction_is_forbidden_and_says_the_fraction if {
	verdict := testdata.enforce(testdata.request({"type": "scale", "to": 4.5}))
	verdict.tier == "forbid"
	"scale does not fit its type: to must be a whole number >= 0 (got 4.5)" in verdict.reasons
	every reason in verdict.reasons {
		not contains(reason, "%!")
	}
}
