package opsgate.govern.authority_test

import data.opsgate.testdata

_with_authority(allowed, requires_approval, forbidden) := testdata.frontend_with([{
	"op": "replace",
	"path": "/governance/agent_authority",
	"value": {"allowed": allowed, "requires_approval": requires_approval, "forbidden": forbidden},
}])

_tier(operation, compiled) := testdata.enforce_with(testdata.request(operation), compiled).tier

test_authority_makes_scale_stricter if {
	_tier({"type": "scale", "to": 3}, _with_authority([], ["scale"], [])) == "approve"
	_tier({"type": "scale", "to": 3}, _with_authority([], [], ["scale"])) == "forbid"
	_tier({"type": "scale", "to": 3}, _with_authority(["scale"], [], [])) == "allow"
	_tier({"type": "scale", "to": 3}, _with_authority([], [], [])) == "allow"
}

test_authority_never_loosens_a_built_in_tier if {
	loose := _with_authority(["delete_pod", "rollback", "scale", "modify_secret"], [], [])
	_tier({"type": "delete_pod", "name": "frontend-1"}, loose) == "forbid"
	_tier({"type": "modify_secret", "name": "db"}, loose) == "forbid"
	_tier({"type": "rollback"}, loose) == "approve"
	_tier({"type": "scale", "to": 9}, loose) == "approve"
}

test_forbid_wins_over_approval_lists if {
	both := _with_authority([], ["update_configmap"], ["update_configmap"])
	verdict := testdata.enforce_with(
		testdata.request({"type": "update_configmap", "name": "cfg", "changes": {"LOG_LEVEL": "INFO"}}),
		both,
	)
	verdict.tier == "forbid"
	verdict.rules == [
		"opsgate.govern.authority.forbidden",
		"opsgate.govern.authority.requires_approval",
		"opsgate.govern.configuration.plain_keys",
	]
}

test_authority_finding_names_its_field if {
	verdict := testdata.enforce_with(testdata.request({"type": "scale", "to": 3}), _with_authority([], ["scale"], []))
	"governance.agent_authority.requires_approval lists scale" in verdict.reasons
	"governance.agent_authority.requires_approval" in verdict.blueprint_refs
}
