package opsgate.main_test

import data.opsgate.catalog
import data.opsgate.testdata

# No input in a generated grid ever yields allow for an operation type the
# built-in tiers forbid: metrics 0-100 by 5, replicas 0-7, restart counts 0-5,
# every operation type, breaker open or closed, with and without cooldown,
# even when the blueprint lists every operation as allowed.

_forbidden_types contains name if {
	some name, entry in catalog.operations
	entry.floor == "forbid"
}

_parameters := {
	"delete_pod": {"name": "frontend-1"},
	"delete_deployment": {"name": "frontend"},
	"delete_service": {"name": "frontend"},
	"delete_pvc": {"name": "data"},
	"modify_secret": {"name": "db"},
	"modify_network_policy": {"name": "default-deny"},
	"modify_rbac": {"name": "runner"},
}

_everything_allowed := testdata.frontend_with([{
	"op": "replace",
	"path": "/governance/agent_authority",
	"value": {"allowed": object.keys(catalog.operations), "requires_approval": [], "forbidden": []},
}])

test_grid_decide_never_allows_a_forbidden_type if {
	decided := {[decision.operation.type, decision.tier] |
		some cpu in numbers.range_step(0, 100, 5)
		some desired in numbers.range(0, 7)
		some restarts in numbers.range(0, 5)
		document := testdata.decide_with(
			[
				testdata.set("/metrics/cpu_percent", cpu),
				testdata.set("/replicas", {"desired": desired, "ready": desired}),
				testdata.set("/pods/0/restart_count", restarts),
				testdata.set("/pods/0/reason", "CrashLoopBackOff"),
			],
			_everything_allowed,
		)
		some decision in document.decisions
	}

	# the grid does reach allow, approve and the recovery operations
	{tier | some [_, tier] in decided} == {"allow", "approve"}
	{kind | some [kind, _] in decided} == {"scale", "restart_pod", "rollback"}
	every pair in decided {
		not _forbidden_allowed(pair[0], pair[1])
	}
}

test_grid_enforce_never_allows_a_forbidden_type if {
	tiers := {[kind, verdict.tier] |
		some kind in _forbidden_types
		some desired in numbers.range(0, 7)
		some breaker in [true, false]
		some last in [null, "2026-02-10T11:59:00Z"]
		request := object.union(testdata.request(object.union({"type": kind}, _parameters[kind])), {
			"replicas": {"desired": desired, "ready": desired},
			"state": {"breaker_open": breaker, "last_operation_at": last},
		})
		verdict := testdata.enforce_with(request, _everything_allowed)
	}
	count(tiers) == count(_forbidden_types)
	every pair in tiers {
		pair[1] == "forbid"
	}
}

test_grid_enforce_scale_tiers_follow_the_limits if {
	every to in numbers.range(0, 7) {
		tier := testdata.enforce(testdata.request({"type": "scale", "to": to})).tier
		tier == _expected_scale_tier(to)
	}
}

_expected_scale_tier(0) := "forbid"

_expected_scale_tier(to) := "approve" if to in {1, 6, 7}

_expected_scale_tier(to) := "allow" if to in {2, 3, 4, 5}

_forbidden_allowed(kind, tier) if {
	kind in _forbidden_types
	tier == "allow"
}
