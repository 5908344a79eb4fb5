package opsgate.govern.safety_test

import data.opsgate.testdata

test_cooldown_reason_reads_a_whole_number_written_as_float if {
	compiled := testdata.frontend_with([testdata.set("/spec/scaling/cooldown_seconds", 300.0)])
	state := {"last_operation_at": "2026-02-10T11:58:00Z", "consecutive_failures": 0, "breaker_open": false}
	request := object.union(testdata.request({"type": "scale", "to": 3}), {"state": state})
	verdict := testdata.enforce_with(request, compiled)
	verdict.tier == "defer"
	verdict.reasons[count(verdict.reasons) - 1] == "last operation 120s ago, within cooldown_seconds 300"
}
