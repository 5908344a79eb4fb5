package opsgate.decide.recovery_test

import data.opsgate.decide.recovery
import data.opsgate.testdata

_failed_pod(reason, restarts) := [
	testdata.set("/pods/0/reason", reason),
	testdata.set("/pods/0/restart_count", restarts),
	testdata.set("/pods/0/ready", false),
]

test_failed_pod_below_max_restart_count_is_restarted if {
	[decision] := testdata.decide(_failed_pod("CrashLoopBackOff", 2)).decisions
	decision.operation == {"type": "restart_pod", "pod": "frontend-1"}
	decision.tier == "allow"
	decision.reasons == [
		"pod frontend-1 is CrashLoopBackOff with 2 restarts < max_restart_count 3",
		"restarting pod frontend-1 is allowed (done as a rollout restart)",
		"governance.agent_authority.allowed lists restart_pod",
	]
	decision.rules == [
		"opsgate.decide.recovery.restart",
		"opsgate.govern.recovery.restart",
		"opsgate.govern.authority.allowed",
	]
}

test_each_failure_reason_is_recovered if {
	every reason in ["CrashLoopBackOff", "Error", "OOMKilled"] {
		testdata.operations(testdata.decide(_failed_pod(reason, 0))) == [{"type": "restart_pod", "pod": "frontend-1"}]
	}
}

test_failed_phase_is_recovered if {
	[decision] := testdata.decide([testdata.set("/pods/1/phase", "Failed")]).decisions
	decision.operation == {"type": "restart_pod", "pod": "frontend-2"}
	decision.reasons[0] == "pod frontend-2 is Failed with 0 restarts < max_restart_count 3"
}

test_restart_count_at_max_proposes_rollback_for_approval if {
	[decision] := testdata.decide(_failed_pod("CrashLoopBackOff", 3)).decisions
	decision.operation == {"type": "rollback"}
	decision.tier == "approve"
	decision.reasons == [
		"pod frontend-1 is CrashLoopBackOff with 3 restarts at or above max_restart_count 3",
		"a rollback replaces the running version of frontend: approval needed",
		"governance.agent_authority.requires_approval lists rollback",
	]
	decision.rules == [
		"opsgate.decide.recovery.rollback",
		"opsgate.govern.recovery.rollback",
		"opsgate.govern.authority.requires_approval",
	]
}

test_rollback_replaces_restarts_of_other_pods if {
	document := testdata.decide(array.concat(
		_failed_pod("Error", 5),
		[testdata.set("/pods/1/reason", "OOMKilled")],
	))
	testdata.operations(document) == [{"type": "rollback"}]
}

test_running_pod_with_restarts_is_left_alone if {
	testdata.decide([testdata.set("/pods/0/restart_count", 7)]).decisions == []
}

# --- the rules, queried directly -------------------------------------------------

_ctx(changes) := testdata.context(changes)

test_failure_reasons if {
	recovery.failure_reasons == {"CrashLoopBackOff", "Error", "OOMKilled"}
}

test_proposals_of_healthy_pods_are_none if {
	recovery.proposals(_ctx([])) == []
	recovery.proposals(_ctx([testdata.set("/pods/0/restart_count", 9), testdata.set("/pods/0/reason", "Completed")])) == []
}

test_proposals_restart_every_failed_pod_below_the_limit if {
	recovery.proposals(_ctx([
		testdata.set("/pods/0/reason", "OOMKilled"),
		testdata.set("/pods/0/restart_count", 2),
		testdata.set("/pods/1/phase", "Failed"),
	])) == [
		{
			"operation": {"type": "restart_pod", "pod": "frontend-1"},
			"reason": "pod frontend-1 is OOMKilled with 2 restarts < max_restart_count 3",
			"rule": "opsgate.decide.recovery.restart",
			"refs": ["spec.reliability.max_restart_count"],
		},
		{
			"operation": {"type": "restart_pod", "pod": "frontend-2"},
			"reason": "pod frontend-2 is Failed with 0 restarts < max_restart_count 3",
			"rule": "opsgate.decide.recovery.restart",
			"refs": ["spec.reliability.max_restart_count"],
		},
	]
}

test_proposals_one_rollback_naming_every_exhausted_pod if {
	recovery.proposals(_ctx([
		testdata.set("/pods/0/reason", "Error"),
		testdata.set("/pods/0/restart_count", 4),
		testdata.set("/pods/1/phase", "Failed"),
		testdata.set("/pods/1/restart_count", 3),
	])) == [{
		"operation": {"type": "rollback"},
		"reason": concat("", [
			"pod frontend-1 is Error with 4 restarts, pod frontend-2 is Failed with 3 restarts ",
			"at or above max_restart_count 3",
		]),
		"rule": "opsgate.decide.recovery.rollback",
		"refs": ["spec.reliability.max_restart_count"],
	}]
}

test_restart_reads_max_restart_count if {
	ctx := object.union(_ctx([]), {"blueprint": {"spec": {"reliability": {"max_restart_count": 5}}}})
	pod := {"name": "p", "reason": "Error", "restart_count": 4}
	recovery.restart(ctx, pod).reason == "pod p is Error with 4 restarts < max_restart_count 5"
	not recovery.restart(ctx, object.union(pod, {"restart_count": 5}))
}

test_rollback_not_without_an_exhausted_failed_pod if {
	not recovery.rollback(_ctx([testdata.set("/pods/0/reason", "Error"), testdata.set("/pods/0/restart_count", 2)]))
	not recovery.rollback(_ctx([testdata.set("/pods/0/restart_count", 8)]))
}
