package opsgate.govern.agents_test

import data.opsgate.govern.agents
import data.opsgate.testdata

# the shipped governance.yaml names ops-assistant (shop only: scale and restart_pod
# allowed; adjust_resources, update_configmap and rollback need approval) and kagent

_as(name, operation) := object.union(testdata.request(operation), {"actor": {"kind": "agent", "name": name}})

_verdict(name, operation) := testdata.enforce(_as(name, operation))

_with_agent(entry) := testdata.frontend_with([testdata.set("/governance/agents/probe", entry)])

_probe(entry, operation) := testdata.enforce_with(_as("probe", operation), _with_agent(entry))

test_an_unknown_agent_may_not_act if {
	verdict := _verdict("stranger", {"type": "scale", "to": 3})
	verdict.tier == "forbid"
	"agent stranger is not named in governance.agents: it may read, not act" in verdict.reasons
	"opsgate.govern.agents.unknown" in verdict.rules
	"governance.agents" in verdict.blueprint_refs
}

test_a_person_and_the_runner_are_not_held_to_agent_entries if {
	testdata.enforce(object.union(
		testdata.request({"type": "scale", "to": 3}),
		{"actor": {"kind": "person", "name": "stranger"}},
	)).tier == "allow"
	testdata.enforce(testdata.request({"type": "scale", "to": 3})).tier == "allow"
}

test_an_agent_name_that_is_not_a_string_is_unknown if {
	verdict := testdata.enforce(object.union(
		testdata.request({"type": "scale", "to": 3}),
		{"actor": {"kind": "agent", "name": ["ops-assistant"]}},
	))
	verdict.tier == "forbid"
	"opsgate.govern.agents.unknown" in verdict.rules
}

test_a_listed_agent_keeps_the_built_in_tier if {
	verdict := _verdict("ops-assistant", {"type": "scale", "to": 3})
	verdict.tier == "allow"
	"governance.agents.ops-assistant.allowed lists scale" in verdict.reasons
}

test_the_entry_only_tightens if {
	# allowed to the agent, yet beyond max_replicas: the built-in approve stands
	_verdict("ops-assistant", {"type": "scale", "to": 9}).tier == "approve"

	# allowed to the agent, forbidden by the catalog: forbid stands
	loose := {"allowed": ["delete_pvc", "scale"]}
	_probe(loose, {"type": "delete_pvc", "name": "data"}).tier == "forbid"

	# requires approval for the agent where the built-in tier allows
	verdict := _verdict("ops-assistant", {"type": "adjust_resources", "resource": "cpu", "to": "105m"})
	verdict.tier == "approve"
	"governance.agents.ops-assistant.requires_approval lists adjust_resources" in verdict.reasons
}

test_a_type_listed_nowhere_is_forbidden_to_the_agent if {
	verdict := _verdict("ops-assistant", {"type": "update_strategy", "changes": {"max_surge": 2}})
	verdict.tier == "forbid"
	"opsgate.govern.agents.not_listed" in verdict.rules
}

test_forbidden_wins_within_an_entry if {
	verdict := _probe({"allowed": ["scale"], "forbidden": ["scale"]}, {"type": "scale", "to": 3})
	verdict.tier == "forbid"
	"governance.agents.probe.forbidden lists scale" in verdict.reasons
}

test_a_read_only_agent_may_not_act if {
	verdict := _probe({"allowed": ["scale"], "read_only": true}, {"type": "scale", "to": 3})
	verdict.tier == "forbid"
	"governance.agents.probe.read_only: it may read, not act" in verdict.reasons
}

test_namespaces_bound_the_agent if {
	verdict := _probe({"allowed": ["scale"], "namespaces": ["payments"]}, {"type": "scale", "to": 3})
	verdict.tier == "forbid"
	"governance.agents.probe.namespaces does not list shop, the namespace of frontend" in verdict.reasons
	_probe({"allowed": ["scale"], "namespaces": ["shop"]}, {"type": "scale", "to": 3}).tier == "allow"
	_probe({"allowed": ["scale"]}, {"type": "scale", "to": 3}).tier == "allow"
	_probe({"allowed": ["scale"], "namespaces": []}, {"type": "scale", "to": 3}).tier == "forbid"
}

test_findings_are_empty_for_anyone_but_an_agent if {
	ctx := testdata.context([])
	count(agents.findings({"type": "scale", "to": 3}, ctx)) == 0
	count(agents.findings({"type": "scale", "to": 3}, object.union(ctx, {"actor": "agent"}))) == 0
}

test_authority_lists_what_an_agent_may_request if {
	answer := testdata.authority({"actor": {"kind": "agent", "name": "ops-assistant"}}, testdata.blueprints)
	answer.may_act
	answer.services.frontend.may_request == ["adjust_resources", "restart_pod", "rollback", "scale", "update_configmap"]
	answer.services.frontend.namespace == "shop"
}

test_authority_of_an_unknown_or_read_only_agent_is_empty if {
	unknown := testdata.authority({"actor": {"kind": "agent", "name": "stranger"}}, testdata.blueprints)
	not unknown.may_act
	unknown.services.frontend.may_request == []

	read_only := testdata.authority({"actor": {"kind": "agent", "name": "probe"}}, _with_agent({"allowed": ["scale"], "read_only": true}))
	not read_only.may_act

	outside := testdata.authority({"actor": {"kind": "agent", "name": "probe"}}, _with_agent({"allowed": ["scale"], "namespaces": ["payments"]}))
	not outside.may_act
}

test_authority_leaves_out_what_is_forbidden_anyway if {
	entry := {"allowed": ["scale", "delete_pvc", "modify_rbac"], "requires_approval": ["rollback"], "forbidden": ["rollback"]}
	answer := testdata.authority({"actor": {"kind": "agent", "name": "probe"}}, _with_agent(entry))
	answer.services.frontend.may_request == ["scale"]
}

test_authority_of_no_agent_is_empty if {
	answer := testdata.authority({"actor": {"kind": "person", "name": "alice"}}, testdata.blueprints)
	not answer.may_act
	answer.services == {}
	bad := testdata.authority("x", testdata.blueprints)
	bad.actor == null
}
