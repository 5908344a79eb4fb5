package opsgate.decide.quiet_test

import data.opsgate.decide.quiet
import data.opsgate.main
import data.opsgate.testdata

# quiet is a shortcut: wherever it holds, the full rules must agree that
# there is nothing to decide and nothing to note.

_grid := [item |
	some cpu in numbers.range_step(0, 100, 10)
	some desired in numbers.range(1, 6)
	some restarts in [0, 3]
	some reason in [null, "OOMKilled"]
	some history in _histories
	some latency in [150, 250]
	item := json.patch(testdata.observation, [
		testdata.set("/metrics/cpu_percent", cpu),
		testdata.set("/metrics/latency_p95_ms", latency),
		testdata.set("/replicas", {"desired": desired, "ready": desired}),
		testdata.set("/pods/0/restart_count", restarts),
		testdata.set("/pods/0/reason", reason),
		testdata.set("/state/history", history),
	])
]

# what the runner remembers: none; requests to right-size and a watched window; requests
# inside their band, a window of high recommendations and slow ticks; a sustained latency
_histories := [
	{},
	{
		"usage": {"memory": testdata.usage(testdata.mebibytes(60), 70), "cpu": testdata.usage(30, 1440)},
		"ticks": testdata.ticks(300, 2, 150),
	},
	{
		"usage": {"memory": testdata.usage(testdata.mebibytes(110), 70), "cpu": testdata.usage(65, 1440)},
		"ticks": testdata.ticks(300, 6, 250),
	},
	{"ticks": testdata.ticks(120, 2, 250)},
]

_broken := [json.patch(testdata.observation, changes) |
	some changes in [
		[testdata.set("/metrics/cpu_percent", "85")],
		[testdata.set("/metrics/throughput_rps", -1)],
		[testdata.set("/metrics/error_rate_percent", true)],
		[testdata.set("/metrics/latency_p95_ms", {"p95": 150})],
		[testdata.set("/metrics/memory_percent", null)],
		[testdata.set("/replicas/ready", 1.5)],
		[testdata.set("/pods/0/restart_count", "0")],
		[testdata.set("/pods", "none")],
		[testdata.set("/now", "noon")],
		[testdata.set("/state/breaker_open", "no")],
		[testdata.set("/resources/cpu/usage", "lots")],
		[testdata.set("/resources/gpu", {"request": "1", "usage": "1"})],
		[testdata.remove("/metrics/cpu_percent")],
		[testdata.set("/pods/1/phase", "Failed")],
	]
]

test_quiet_implies_nothing_to_decide if {
	blueprint := testdata.blueprints.frontend
	results := [[quiet_here, document] |
		some item in array.concat(_grid, _broken)
		quiet_here := _quiet(item, blueprint)
		document := main.full_decision_document(item, {blueprint}, {"catalog": data.opsgate.catalog.operations, "revision": "r"})
	]

	# the grid has both kinds, so this test can fail
	count([1 | some [true, _] in results]) > 10
	count([1 | some [false, _] in results]) > 10
	every result in results {
		_agrees(result[0], result[1])
	}
}

test_broken_observations_are_never_quiet if {
	every item in _broken {
		not quiet.holds(item, testdata.blueprints.frontend)
	}
}

test_stable_observation_is_quiet if {
	quiet.holds(testdata.observation, testdata.blueprints.frontend)
}

test_pods_without_reason_can_be_quiet if {
	item := json.patch(testdata.observation, [testdata.remove("/pods/0/reason"), testdata.remove("/pods/1/reason")])
	quiet.holds(item, testdata.blueprints.frontend)
}

_quiet(item, blueprint) if quiet.holds(item, blueprint)

else := false

_agrees(false, _)

_agrees(true, document) if {
	document.decisions == []
	document.notes == []
}

test_overflowing_metric_is_not_quiet if {
	not quiet.holds(json.patch(testdata.observation, [testdata.set("/metrics/throughput_rps", 1e400)]), testdata.blueprints.frontend)
}
