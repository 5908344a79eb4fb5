package opsgate.govern.configuration_test

import data.opsgate.govern.configuration
import data.opsgate.testdata

_configmap(changes) := {"type": "update_configmap", "name": "frontend-config", "changes": changes}

_ctx := testdata.context([])

_verdict(operation) := testdata.enforce(testdata.request(operation))

_tier(operation) := _verdict(operation).tier

# --- the rules, queried directly -------------------------------------------------

test_findings_plain_keys_are_allowed_naming_them_sorted if {
	configuration.findings(_configmap({"LOG_LEVEL": "DEBUG", "FEATURE_X": "on"}), _ctx) == {{
		"order": [2, 0],
		"tier": "allow",
		"reason": "configmap frontend-config: keys FEATURE_X, LOG_LEVEL are not sensitive",
		"rule": "opsgate.govern.configuration.plain_keys",
		"refs": [],
		"suggestion": null,
	}}
}

test_findings_sensitive_keys_are_forbidden_naming_only_those if {
	configuration.findings(_configmap({"LOG_LEVEL": "DEBUG", "db_password": "x", "API_TOKEN": "y"}), _ctx) == {{
		"order": [0, 0],
		"tier": "forbid",
		"reason": "configmap frontend-config: keys API_TOKEN, db_password look sensitive",
		"rule": "opsgate.govern.configuration.sensitive_keys",
		"refs": [],
		"suggestion": {
			"text": "keep credentials in Secrets, changed by a person through the secret store",
			"operation": null,
		},
	}}
}

test_findings_every_sensitive_word_and_part_is_caught_in_any_case if {
	keys := {k | some word in configuration.sensitive_words; k := sprintf("APP_%s_FILE", [upper(word)])} | {k |
		some part in configuration.sensitive_parts
		k := sprintf("x-%s", [part])
	}
	count(keys) == count(configuration.sensitive_words) + count(configuration.sensitive_parts)
	every key in keys {
		[f.rule | some f in configuration.findings(_configmap({key: "v"}), _ctx)] == ["opsgate.govern.configuration.sensitive_keys"]
	}
}

test_findings_strategy_asks_approval if {
	configuration.findings({"type": "update_strategy", "changes": {"max_unavailable": 1, "max_surge": 2}}, _ctx) == {{
		"order": [1, 0],
		"tier": "approve",
		"reason": "changing the deployment strategy (max_surge, max_unavailable) changes how every rollout behaves: approval needed",
		"rule": "opsgate.govern.configuration.strategy",
		"refs": ["spec.deployment.strategy", "spec.deployment.max_surge", "spec.deployment.max_unavailable"],
		"suggestion": null,
	}}
}

test_findings_health_checks_ask_approval_naming_the_probe if {
	configuration.findings({"type": "update_health_checks", "probe": "liveness", "changes": {"period_seconds": 5}}, _ctx) == {{
		"order": [1, 0],
		"tier": "approve",
		"reason": "changing the liveness probe (period_seconds) decides when pods count as healthy: approval needed",
		"rule": "opsgate.govern.configuration.health_checks",
		"refs": [],
		"suggestion": null,
	}}
}

test_findings_of_other_operation_types_are_empty if {
	configuration.findings({"type": "scale", "to": 3}, _ctx) == set()
}

# --- through enforce ---------------------------------------------------------------

test_configmap_log_level_allowed if {
	verdict := _verdict({"type": "update_configmap", "name": "frontend-config", "changes": {"LOG_LEVEL": "DEBUG"}})
	verdict.tier == "allow"
	verdict.reasons[0] == "configmap frontend-config: keys LOG_LEVEL are not sensitive"
}

test_configmap_sensitive_keys_forbidden if {
	every key in ["db_password", "PASSWD", "api_token", "client_secret", "ssh_key", "aws_credentials", "tls_cert", "MYSQL_PWD", "DB_PASS", "x-auth", "gpg_passphrase"] {
		verdict := _verdict({"type": "update_configmap", "name": "frontend-config", "changes": {key: "x"}})
		verdict.tier == "forbid"
		verdict.rules[0] == "opsgate.govern.configuration.sensitive_keys"
		verdict.suggestion.text == "keep credentials in Secrets, changed by a person through the secret store"
	}
}

test_configmap_words_that_only_contain_pass_or_auth_are_plain if {
	every key in ["bypass_cache", "AUTHOR", "passage", "oauth_redirect_path"] {
		_verdict({"type": "update_configmap", "name": "frontend-config", "changes": {key: "x"}}).tier == "allow"
	}
}

test_strategy_and_health_checks_need_approval if {
	_verdict({"type": "update_strategy", "changes": {"max_unavailable": 1}}).rules[0] == "opsgate.govern.configuration.strategy"
	_tier({"type": "update_strategy", "changes": {"max_unavailable": 1}}) == "approve"
	_tier({"type": "update_health_checks", "probe": "readiness", "changes": {"period_seconds": 5}}) == "approve"
}

# --- which ConfigMaps -------------------------------------------------------------

test_a_configmap_the_service_does_not_own_is_forbidden if {
	operation := {"type": "update_configmap", "name": "payments-config", "changes": {"LOG_LEVEL": "debug"}}
	configuration.not_owned(operation, _ctx) == {
		"order": [0, 0],
		"tier": "forbid",
		"reason": "configmap payments-config is not one of the ConfigMaps frontend owns (target.configmaps)",
		"rule": "opsgate.govern.configuration.not_owned",
		"refs": ["target.configmaps"],
		"suggestion": {
			"text": "change one of target.configmaps (frontend-config), or have the owner list payments-config there",
			"operation": null,
		},
	}
	verdict := _verdict(operation)
	verdict.tier == "forbid"
	verdict.rules[0] == "opsgate.govern.configuration.not_owned"
}

test_an_owned_configmap_is_not_refused_for_its_name if {
	not configuration.not_owned(_configmap({"LOG_LEVEL": "debug"}), _ctx)
	_tier(_configmap({"LOG_LEVEL": "debug"})) == "allow"
}

test_a_service_that_lists_no_configmap_may_change_none if {
	ctx := testdata.context([testdata.set("/service", "hello")])
	finding := configuration.not_owned({"type": "update_configmap", "name": "hello-config", "changes": {"A": "1"}}, ctx)
	finding.suggestion.text == "change one of target.configmaps (none listed), or have the owner list hello-config there"
}
