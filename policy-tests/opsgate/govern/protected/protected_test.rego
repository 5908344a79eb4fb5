package opsgate.govern.protected_test

import data.opsgate.govern.protected
import data.opsgate.testdata

_ctx := testdata.context([])

_verdict(operation) := testdata.enforce(testdata.request(operation))

# --- the rules, queried directly -------------------------------------------------

test_findings_delete_deployment_suggests_scaling_to_min_replicas if {
	protected.findings({"type": "delete_deployment", "name": "frontend"}, _ctx) == {{
		"order": [0, 0],
		"tier": "forbid",
		"reason": "deleting deployment frontend is forbidden",
		"rule": "opsgate.govern.protected.delete_deployment",
		"refs": ["spec.scaling.min_replicas"],
		"suggestion": {"text": "scale to min_replicas 2 instead", "operation": {"type": "scale", "to": 2}},
	}}
}

test_findings_delete_deployment_reads_min_replicas if {
	ctx := object.union(_ctx, {"blueprint": {"spec": {"scaling": {"min_replicas": 4}}}})
	[finding] := [f | some f in protected.findings({"type": "delete_deployment", "name": "frontend"}, ctx)]
	finding.suggestion.operation == {"type": "scale", "to": 4}
}

test_findings_other_protected_objects_are_forbidden_naming_them if {
	every case in [
		{"type": "delete_service", "reason": "deleting service web is forbidden"},
		{"type": "delete_pvc", "reason": "deleting volume claim web is forbidden"},
		{"type": "modify_secret", "reason": "changing secret web is forbidden"},
		{"type": "modify_network_policy", "reason": "changing network policy web is forbidden"},
		{"type": "modify_rbac", "reason": "changing RBAC object web is forbidden"},
	] {
		findings := protected.findings({"type": case.type, "name": "web"}, _ctx)
		{[f.tier, f.rule, f.reason, f.suggestion.operation] | some f in findings} == {[
			"forbid",
			"opsgate.govern.protected.other_objects",
			case.reason,
			null,
		]}
		every f in findings {
			count(f.suggestion.text) > 0
		}
	}
}

test_findings_of_other_operation_types_are_empty if {
	every operation in [
		{"type": "scale", "to": 3},
		{"type": "delete_pod", "name": "frontend-1"},
		{"type": "update_configmap", "name": "cfg", "changes": {"LOG_LEVEL": "INFO"}},
	] {
		protected.findings(operation, _ctx) == set()
	}
}

# --- through enforce ---------------------------------------------------------------

test_protected_objects_forbidden_with_suggestions if {
	every case in [
		{"type": "delete_deployment", "text": "scale to min_replicas 2 instead"},
		{"type": "delete_service", "text": "keep the Service; to take traffic away, scale the deployment to min_replicas"},
		{"type": "delete_pvc", "text": "keep the claim: deleting it destroys data; ask the service owner"},
		{"type": "modify_secret", "text": "ask a person to rotate the secret through the secret store"},
		{"type": "modify_network_policy", "text": "propose the network policy change for security review"},
		{"type": "modify_rbac", "text": "propose the RBAC change for access review"},
	] {
		verdict := _verdict({"type": case.type, "name": "x"})
		verdict.tier == "forbid"
		verdict.suggestion.text == case.text
	}
}

test_delete_deployment_suggests_scaling_to_min if {
	_verdict({"type": "delete_deployment", "name": "frontend"}).suggestion.operation == {"type": "scale", "to": 2}
}
