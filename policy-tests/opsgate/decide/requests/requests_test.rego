package opsgate.decide.requests_test

import data.opsgate.decide.requests
import data.opsgate.testdata

_scale(to) := {"type": "scale", "from": 5, "to": to}

_memory(to) := {"type": "adjust_resources", "resource": "memory", "field": "request", "from": "128Mi", "to": to}

_asked(id, status, operation, at) := {"id": id, "status": status, "operation": operation, "at": at}

_ctx(asked) := testdata.context([testdata.set("/state/requests", asked)])

_plan(asked, operation) := requests.plan(_ctx(asked), operation)

test_nothing_asked_yet_asks if {
	_plan([], _scale(7)) == {"action": "new", "id": null, "reason": null}
}

test_an_open_request_for_the_same_change_is_kept if {
	_plan([_asked("r1", "pending", _scale(7), "2026-02-10T11:50:00Z")], _scale(7)).action == "keep"
	_plan([_asked("r1", "pending", _scale(7), "2026-02-10T11:50:00Z")], _scale(7)).id == "r1"
}

test_a_decision_that_moved_materially_supersedes_the_open_request if {
	plan := _plan([_asked("r1", "pending", _scale(6), "2026-02-10T11:50:00Z")], _scale(8))
	plan == {
		"action": "supersede",
		"id": "r1",
		"reason": "supersedes request r1: the decision moved materially since it was asked",
	}
}

test_a_count_that_wavers_down_by_one_keeps_its_request if {
	# 8 asked: 7 is 12.5% less, within twice the tolerance; 6 is 25% less
	_plan([_asked("r1", "pending", _scale(8), "2026-02-10T11:50:00Z")], _scale(7)).action == "keep"
	_plan([_asked("r1", "pending", _scale(8), "2026-02-10T11:50:00Z")], _scale(6)).action == "supersede"
}

test_materially_means_beyond_the_tolerance_and_a_whole_replica if {
	# tolerance_percent 10: 7 -> 8 is 14%, 20 -> 22 is 10% (not beyond), 20 -> 23 is 15%
	_plan([_asked("r1", "pending", _scale(7), "2026-02-10T11:50:00Z")], _scale(8)).action == "supersede"
	_plan([_asked("r1", "pending", _scale(20), "2026-02-10T11:50:00Z")], _scale(22)).action == "keep"
	_plan([_asked("r1", "pending", _scale(20), "2026-02-10T11:50:00Z")], _scale(23)).action == "supersede"
}

test_resource_requests_move_materially_beyond_the_band if {
	asked := [_asked("r2", "pending", _memory("150Mi"), "2026-02-10T11:50:00Z")]
	_plan(asked, _memory("160Mi")).action == "keep" # 6.7%, inside resource_band_percent 10
	_plan(asked, _memory("173Mi")).action == "supersede" # 15%
}

test_other_types_move_with_any_parameter if {
	restart := {"type": "restart_pod", "name": "frontend-1"}
	asked := [_asked("r3", "pending", restart, "2026-02-10T11:50:00Z")]
	_plan(asked, restart).action == "keep"
	_plan(asked, object.union(restart, {"from": "x"})).action == "keep"
}

test_a_rejected_request_is_not_asked_again_the_same_day if {
	refused := [_asked("r4", "rejected", _scale(7), "2026-02-10T08:00:00Z")]
	plan := _plan(refused, _scale(7))
	plan.action == "withhold"
	plan.id == "r4"
	plan.reason == "not asked again: request r4 for the same change was rejected less than a day ago, and the decision has not moved materially since"

	# an expiry is a refusal too
	_plan([_asked("r5", "expired", _scale(7), "2026-02-10T08:00:00Z")], _scale(7)).action == "withhold"
}

test_a_rejected_request_is_asked_again_when_inputs_move_or_a_day_passed if {
	_plan([_asked("r4", "rejected", _scale(7), "2026-02-10T08:00:00Z")], _scale(9)).action == "new"
	_plan([_asked("r4", "rejected", _scale(7), "2026-02-09T12:00:00Z")], _scale(7)).action == "new"
	_plan([_asked("r4", "rejected", _scale(7), "2026-02-09T12:00:01Z")], _scale(7)).action == "withhold"
}

test_another_kind_of_change_holds_nothing_back if {
	cpu := object.union(_memory("150Mi"), {"resource": "cpu", "to": "150m"})
	_plan([_asked("r6", "pending", _memory("150Mi"), "2026-02-10T11:50:00Z")], cpu).action == "new"
	limit := object.union(_memory("150Mi"), {"field": "limit"})
	_plan([_asked("r6", "pending", _memory("150Mi"), "2026-02-10T11:50:00Z")], limit).action == "new"
}

test_a_request_field_left_out_is_its_default if {
	no_field := object.remove(_memory("150Mi"), ["field"])
	_plan([_asked("r7", "pending", no_field, "2026-02-10T11:50:00Z")], _memory("150Mi")).action == "keep"
}

test_entries_that_do_not_fit_hold_nothing_back if {
	broken := [
		{"id": 7, "status": "pending", "operation": _scale(7), "at": "2026-02-10T11:50:00Z"},
		{"id": "a", "status": "granted", "operation": _scale(7), "at": "2026-02-10T11:50:00Z"},
		{"id": "b", "status": "pending", "operation": "scale", "at": "2026-02-10T11:50:00Z"},
		{"id": "c", "status": "pending", "operation": _scale(7)},
		"junk",
	]
	_plan(broken, _scale(7)).action == "new"
	_plan("junk", _scale(7)).action == "new"
}

test_decisions_that_need_approval_carry_the_plan if {
	document := testdata.decide([
		testdata.set("/metrics/cpu_percent", 95),
		testdata.set("/replicas", {"desired": 5, "ready": 5}),
		testdata.set("/state/requests", [_asked("r1", "pending", _scale(6), "2026-02-10T11:50:00Z")]),
	])
	[decision] := document.decisions
	decision.tier == "approve"
	decision.request.action == "supersede" # 6 asked, 7 needed now

	allowed := testdata.decide([testdata.set("/metrics/cpu_percent", 85)])
	every d in allowed.decisions {
		not "request" in object.keys(d)
	}
}
