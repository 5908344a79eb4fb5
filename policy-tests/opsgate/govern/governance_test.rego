package opsgate.govern_test

import data.opsgate.testdata

_verdict(operation) := testdata.enforce(testdata.request(operation))

_tier(operation) := _verdict(operation).tier

# --- scale -------------------------------------------------------------------

test_scale_tiers_by_replica_limits if {
	every case in [
		{"to": 2, "tier": "allow", "rule": "opsgate.govern.scaling.within_limits"},
		{"to": 5, "tier": "allow", "rule": "opsgate.govern.scaling.within_limits"},
		{"to": 6, "tier": "approve", "rule": "opsgate.govern.scaling.above_maximum"},
		{"to": 1, "tier": "approve", "rule": "opsgate.govern.scaling.below_minimum"},
		{"to": 0, "tier": "forbid", "rule": "opsgate.govern.scaling.to_zero"},
	] {
		verdict := _verdict({"type": "scale", "to": case.to})
		verdict.tier == case.tier
		verdict.rules[0] == case.rule
	}
}

test_scale_to_zero_forbidden_with_suggestion if {
	verdict := _verdict({"type": "scale", "to": 0})
	verdict.tier == "forbid"
	verdict.suggestion == {
		"text": "keep min_replicas >= 1: scale to min_replicas 2 instead",
		"operation": {"type": "scale", "to": 2},
	}
	verdict.reasons[0] == "scaling to 0 replicas takes the service down"
}

test_enforce_verdict_is_the_whole_contract if {
	verdict := _verdict({"type": "scale", "to": 6})
	object.remove(verdict, ["id"]) == {
		"operation": {"type": "scale", "from": 2, "to": 6},
		"tier": "approve",
		"reasons": ["needs 6 replicas, above max_replicas 5", "governance.agent_authority.allowed lists scale"],
		"rules": ["opsgate.govern.scaling.above_maximum", "opsgate.govern.authority.allowed"],
		"blueprint_refs": ["governance.agent_authority.allowed", "spec.scaling.max_replicas"],
		"suggestion": null,
		"service": "frontend",
		"blueprint": {"name": "frontend", "version": "1.0.0"},
		"bundle_revision": "test-revision",
		"dry_run": false,
	}
	count(verdict.id) == 16
}

# --- resources -----------------------------------------------------------------

_adjust(resource, field, to) := {"type": "adjust_resources", "resource": resource, "field": field, "to": to}

test_resource_tiers if {
	every case in [
		# exactly 10% is inside the band
		{"op": _adjust("cpu", "request", "90m"), "tier": "allow", "rule": "opsgate.govern.resources.within_band"},
		{"op": _adjust("cpu", "request", "110m"), "tier": "allow", "rule": "opsgate.govern.resources.within_band"},
		{"op": _adjust("cpu", "request", "89m"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("cpu", "request", "50m"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("cpu", "request", "0.2"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("memory", "request", "120Mi"), "tier": "allow", "rule": "opsgate.govern.resources.within_band"},
		{"op": _adjust("memory", "limit", "300Mi"), "tier": "approve", "rule": "opsgate.govern.resources.beyond_band"},
		{"op": _adjust("memory", "request", "60Mi"), "tier": "forbid", "rule": "opsgate.govern.resources.below_minimum"},
		{"op": _adjust("cpu", "request", "600m"), "tier": "forbid", "rule": "opsgate.govern.resources.above_limit"},
		{"op": _adjust("cpu", "limit", "90m"), "tier": "forbid", "rule": "opsgate.govern.resources.limit_below_request"},
	] {
		verdict := _verdict(case.op)
		verdict.tier == case.tier
		verdict.rules[0] == case.rule
	}
}

test_field_defaults_to_request if {
	verdict := _verdict({"type": "adjust_resources", "resource": "cpu", "to": "90m"})
	verdict.tier == "allow"
	verdict.operation.from == "100m"
}

test_memory_below_minimum_suggestion_names_the_minimum if {
	verdict := _verdict(_adjust("memory", "request", "32Mi"))
	verdict.tier == "forbid"
	verdict.reasons[0] == "memory request 32Mi is below spec.resources.memory.minimum 64Mi"
	verdict.suggestion == {
		"text": "keep the memory request at or above 64Mi",
		"operation": {"type": "adjust_resources", "resource": "memory", "field": "request", "to": "64Mi"},
	}
}

test_band_measured_from_observed_request_when_given if {
	request := object.union(
		testdata.request(_adjust("cpu", "request", "180m")),
		{"resources": {"cpu": {"request": "200m", "limit": "500m"}}},
	)
	verdict := testdata.enforce(request)
	verdict.tier == "allow"
	verdict.operation.from == "200m"
}

# --- recovery, configuration, protected objects ---------------------------------

test_recovery_tiers if {
	_tier({"type": "restart_pod", "pod": "frontend-1"}) == "allow"
	_tier({"type": "rollback"}) == "approve"
	_tier({"type": "rollback", "to_revision": 3}) == "approve"
}

test_delete_pod_forbidden_suggesting_restart if {
	verdict := _verdict({"type": "delete_pod", "name": "frontend-1"})
	verdict.tier == "forbid"
	verdict.suggestion == {
		"text": "restart pod frontend-1 instead (restart_pod)",
		"operation": {"type": "restart_pod", "pod": "frontend-1"},
	}
}

test_configmap_log_level_allowed if {
	verdict := _verdict({"type": "update_configmap", "name": "frontend-config", "changes": {"LOG_LEVEL": "DEBUG"}})
	verdict.tier == "allow"
	verdict.reasons[0] == "configmap frontend-config: keys LOG_LEVEL are not sensitive"
}

test_configmap_sensitive_keys_forbidden if {
	every key in ["db_password", "PASSWD", "api_token", "client_secret", "ssh_key", "aws_credentials", "tls_cert", "MYSQL_PWD", "DB_PASS", "x-auth", "gpg_passphrase"] {
		verdict := _verdict({"type": "update_configmap", "name": "cfg", "changes": {key: "x"}})
		verdict.tier == "forbid"
		verdict.rules[0] == "opsgate.govern.configuration.sensitive_keys"
		verdict.suggestion.text == "keep credentials in Secrets, changed by a person through the secret store"
	}
}

test_configmap_words_that_only_contain_pass_or_auth_are_plain if {
	every key in ["bypass_cache", "AUTHOR", "passage", "oauth_redirect_path"] {
		_verdict({"type": "update_configmap", "name": "cfg", "changes": {key: "x"}}).tier == "allow"
	}
}

test_strategy_and_health_checks_need_approval if {
	_verdict({"type": "update_strategy", "changes": {"max_unavailable": 1}}).rules[0] == "opsgate.govern.configuration.strategy"
	_tier({"type": "update_strategy", "changes": {"max_unavailable": 1}}) == "approve"
	_tier({"type": "update_health_checks", "probe": "readiness", "changes": {"period_seconds": 5}}) == "approve"
}

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

test_operation_no_rule_can_classify_is_forbidden if {
	# an observed request of 0 leaves no band to measure: fail closed
	request := object.union(
		testdata.request({"type": "adjust_resources", "resource": "cpu", "to": "90m"}),
		{"resources": {"cpu": {"request": "0m"}}},
	)
	verdict := testdata.enforce(request)
	verdict.tier == "forbid"
	verdict.rules[0] == "opsgate.govern.classify.unclassified"
	verdict.reasons[0] == "no rule could classify adjust_resources with what is known: forbidden (fail closed)"
}
