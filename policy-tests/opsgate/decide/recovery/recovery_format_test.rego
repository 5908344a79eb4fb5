package opsgate.decide.recovery_test

import data.opsgate.testdata

_float_limit_compiled := testdata.frontend_with([testdata.set("/spec/reliability/max_restart_count", 3.0)])

_float_failed_pod(restarts) := [
	testdata.set("/pods/0/reason", "CrashLoopBackOff"),
	testdata.set("/pods/0/restart_count", restarts),
	testdata.set("/pods/0/ready", false),
]

test_restart_reason_reads_whole_numbers_written_as_floats if {
	[decision] := testdata.decide_with(_float_failed_pod(2.0), _float_limit_compiled).decisions
	decision.operation == {"type": "restart_pod", "pod": "frontend-1"}
	decision.reasons[0] == "pod frontend-1 is CrashLoopBackOff with 2 restarts < max_restart_count 3"
}

test_rollback_reason_reads_whole_numbers_written_as_floats if {
	[decision] := testdata.decide_with(_float_failed_pod(3.0), _float_limit_compiled).decisions
	decision.operation == {"type": "rollback"}
	decision.reasons[0] == "pod frontend-1 is CrashLoopBackOff with 3 restarts at or above max_restart_count 3"
}
