package opsgate.govern.authority_test

import data.opsgate.govern.authority
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
		testdata.request({"type": "update_configmap", "name": "frontend-config", "changes": {"LOG_LEVEL": "INFO"}}),
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

# --- the rules, queried directly -------------------------------------------------

# the frontend: scale allowed, rollback requires approval, delete_pod forbidden
_ctx := testdata.context([])

test_findings_of_an_allowed_type if {
	authority.findings({"type": "scale", "to": 3}, _ctx) == {{
		"order": [2, 1],
		"tier": "allow",
		"reason": "governance.agent_authority.allowed lists scale",
		"rule": "opsgate.govern.authority.allowed",
		"refs": ["governance.agent_authority.allowed"],
		"suggestion": null,
	}}
}

test_findings_of_a_type_requiring_approval if {
	authority.findings({"type": "rollback"}, _ctx) == {{
		"order": [1, 1],
		"tier": "approve",
		"reason": "governance.agent_authority.requires_approval lists rollback",
		"rule": "opsgate.govern.authority.requires_approval",
		"refs": ["governance.agent_authority.requires_approval"],
		"suggestion": null,
	}}
}

test_findings_of_a_forbidden_type if {
	authority.findings({"type": "delete_pod", "name": "frontend-1"}, _ctx) == {{
		"order": [0, 1],
		"tier": "forbid",
		"reason": "governance.agent_authority.forbidden lists delete_pod",
		"rule": "opsgate.govern.authority.forbidden",
		"refs": ["governance.agent_authority.forbidden"],
		"suggestion": null,
	}}
}

test_findings_of_a_type_listed_nowhere_are_empty if {
	ctx := json.patch(_ctx, [{"op": "replace", "path": "/blueprint/governance/agent_authority/allowed", "value": []}])
	authority.findings({"type": "scale", "to": 3}, ctx) == set()
}

test_findings_one_per_list_naming_the_type if {
	ctx := json.patch(_ctx, [{
		"op": "replace",
		"path": "/blueprint/governance/agent_authority",
		"value": {"allowed": ["scale"], "requires_approval": ["scale"], "forbidden": ["scale"]},
	}])
	{f.rule | some f in authority.findings({"type": "scale", "to": 3}, ctx)} == {
		"opsgate.govern.authority.allowed",
		"opsgate.govern.authority.requires_approval",
		"opsgate.govern.authority.forbidden",
	}
}

test_each_rule_only_for_its_own_list if {
	not authority.forbidden({"type": "scale"}, _ctx)
	not authority.requires_approval({"type": "scale"}, _ctx)
	not authority.allowed({"type": "rollback"}, _ctx)
}
