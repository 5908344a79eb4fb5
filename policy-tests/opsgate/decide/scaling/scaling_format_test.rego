package opsgate.decide.scaling_test

import data.opsgate.testdata

test_restore_minimum_reads_whole_numbers_written_as_floats if {
	compiled := testdata.frontend_with([testdata.set("/spec/scaling/min_replicas", 2.0)])
	changes := [testdata.set("/replicas", {"desired": 1.0, "ready": 1})]
	[decision] := testdata.decide_with(changes, compiled).decisions
	decision.operation == {"type": "scale", "from": 1, "to": 2}
	decision.reasons[0] == "replicas 1 < min_replicas 2"
}
