package opsgate.govern.protected_test

import data.opsgate.testdata

test_delete_deployment_suggests_a_whole_minimum_written_as_float if {
	compiled := testdata.frontend_with([testdata.set("/spec/scaling/min_replicas", 2.0)])
	verdict := testdata.enforce_with(testdata.request({"type": "delete_deployment", "name": "frontend"}), compiled)
	verdict.tier == "forbid"
	verdict.suggestion.text == "scale to min_replicas 2 instead"
}
