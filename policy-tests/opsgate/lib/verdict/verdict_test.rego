package opsgate.lib.verdict_test

import data.opsgate.lib.verdict

_metadata(id) := {"custom": {"id": id}}

test_strictest_of_nothing_is_forbid if {
	verdict.combined("i", {}, [], set(), set()).tier == "forbid"
}

test_strictest_tier_wins if {
	findings := {
		verdict.finding(_metadata("a"), "allow", "a", []),
		verdict.finding(_metadata("b"), "approve", "b", []),
	}
	verdict.combined("i", {}, [], findings, set()).tier == "approve"
}

test_combined_orders_strictest_first_and_keeps_the_first_suggestion if {
	findings := {
		verdict.finding(_metadata("opsgate.govern.authority.allowed"), "allow", "listed", ["x"]),
		verdict.finding_with_suggestion(_metadata("opsgate.govern.scaling.to_zero"), "forbid", "zero", ["y"], "s1"),
		verdict.finding(_metadata("opsgate.govern.safety.breaker_open"), "forbid", "breaker", ["z"]),
		verdict.finding(_metadata("opsgate.govern.scaling.within_limits"), "allow", "within", ["x"]),
	}
	combined := verdict.combined("id-1", {"type": "scale", "to": 0}, [], findings, set())
	combined == {
		"id": "id-1",
		"operation": {"type": "scale", "to": 0},
		"tier": "forbid",
		"reasons": ["zero", "breaker", "within", "listed"],
		"rules": [
			"opsgate.govern.scaling.to_zero",
			"opsgate.govern.safety.breaker_open",
			"opsgate.govern.scaling.within_limits",
			"opsgate.govern.authority.allowed",
		],
		"blueprint_refs": ["x", "y", "z"],
		"suggestion": "s1",
	}
}

test_postponement_defers_only_allow if {
	allow := {verdict.finding(_metadata("r"), "allow", "ok", [])}
	wait := {verdict.finding(_metadata("opsgate.govern.safety.cooldown"), "allow", "wait", ["c"])}
	deferred := verdict.combined("i", {}, [], allow, wait)
	deferred.tier == "defer"
	deferred.reasons == ["ok", "wait"]
	approve := {verdict.finding(_metadata("r"), "approve", "ask", [])}
	verdict.combined("i", {}, [], approve, wait).tier == "approve"
}

test_decision_id_is_stable_and_short if {
	id := verdict.decision_id("frontend", "2026-02-10T12:00:00Z", {"type": "scale", "to": 3})
	id == verdict.decision_id("frontend", "2026-02-10T12:00:00Z", {"to": 3, "type": "scale"})
	id != verdict.decision_id("frontend", "2026-02-10T12:00:01Z", {"type": "scale", "to": 3})
	count(id) == 16
}

test_combined_without_findings_is_forbid if {
	verdict.combined("i", {}, [], set(), set()).tier == "forbid"
}

test_finding_sorts_strictest_first_then_built_in_rules if {
	verdict.finding(_metadata("opsgate.govern.scaling.to_zero"), "forbid", "zero", ["r"]) == {
		"order": [0, 0],
		"tier": "forbid",
		"reason": "zero",
		"rule": "opsgate.govern.scaling.to_zero",
		"refs": ["r"],
		"suggestion": null,
	}
	verdict.finding(_metadata("opsgate.govern.authority.allowed"), "allow", "a", []).order == [2, 1]
	verdict.finding(_metadata("opsgate.govern.safety.breaker_open"), "approve", "b", []).order == [1, 2]
}

test_finding_with_suggestion_carries_it if {
	suggestion := verdict.suggestion("do this instead", {"type": "scale", "to": 2})
	suggestion == {"text": "do this instead", "operation": {"type": "scale", "to": 2}}
	found := verdict.finding_with_suggestion(_metadata("r"), "forbid", "no", [], suggestion)
	found == object.union(verdict.finding(_metadata("r"), "forbid", "no", []), {"suggestion": suggestion})
}

test_proposal if {
	verdict.proposal(_metadata("opsgate.decide.scaling.scale_up"), {"type": "scale", "to": 3}, "busy", ["x"]) == {
		"operation": {"type": "scale", "to": 3},
		"reason": "busy",
		"rule": "opsgate.decide.scaling.scale_up",
		"refs": ["x"],
	}
}

test_combined_tells_leading_proposals_first if {
	leading := [verdict.proposal(_metadata("opsgate.decide.scaling.scale_up"), {}, "why", ["p"])]
	findings := {verdict.finding(_metadata("opsgate.govern.scaling.within_limits"), "allow", "fine", ["f"])}
	combined := verdict.combined("i", {}, leading, findings, set())
	combined.reasons == ["why", "fine"]
	combined.rules == ["opsgate.decide.scaling.scale_up", "opsgate.govern.scaling.within_limits"]
	combined.blueprint_refs == ["f", "p"]
}

test_rank_orders_the_tiers if {
	verdict.rank.allow < verdict.rank.approve
	verdict.rank.approve < verdict.rank.forbid
}
