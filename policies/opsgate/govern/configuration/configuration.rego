# METADATA
# title: Configuration governance
# description: |
#   Configmap changes to ordinary keys of a ConfigMap the service owns
#   (target.configmaps) are allowed; any other ConfigMap, and keys that look
#   like credentials, are forbidden. Deployment strategy and health-check changes
#   ask for approval.
# custom:
#   id: opsgate.govern.configuration
package opsgate.govern.configuration

import data.opsgate.lib.verdict

# METADATA
# title: Sensitive key words
# description: A configmap key containing one of these words (any case) is treated as a credential.
# custom:
#   id: opsgate.govern.configuration.sensitive_words
sensitive_words := {"password", "passwd", "passphrase", "pwd", "token", "secret", "key", "credential", "cert"}

# METADATA
# title: Sensitive key parts
# description: |
#   A configmap key with one of these as a whole part (between non-letters, any case:
#   DB_PASS, X-Auth) is treated as a credential too; as a mere substring they are common
#   words (bypass, author).
# custom:
#   id: opsgate.govern.configuration.sensitive_parts
sensitive_parts := {"pass", "auth"}

# METADATA
# title: Configuration findings
# description: The findings for one update_configmap, update_strategy or update_health_checks operation.
# custom:
#   id: opsgate.govern.configuration.findings
findings(operation, ctx) := {f |
	some found in [
		{g | g := not_owned(operation, ctx)},
		{g | g := plain_keys(operation)},
		{g | g := sensitive_keys(operation)},
		{g | g := strategy(operation)},
		{g | g := health_checks(operation)},
	]
	some f in found
}

# METADATA
# title: A ConfigMap the service does not own
# description: |
#   update_configmap may change only the ConfigMaps the blueprint lists in
#   target.configmaps: an agent naming any other ConfigMap of the namespace
#   (another service's, a controller's) is forbidden.
# custom:
#   id: opsgate.govern.configuration.not_owned
not_owned(operation, ctx) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("configmap %s is not one of the ConfigMaps %s owns (target.configmaps)", [operation.name, ctx.service]),
	["target.configmaps"],
	verdict.suggestion(
		sprintf("change one of target.configmaps (%s), or have the owner list %s there", [_owned(ctx), operation.name]),
		null,
	),
) if {
	operation.type == "update_configmap"
	not operation.name in object.get(ctx.blueprint.target, "configmaps", [])
}

_owned(ctx) := concat(", ", object.get(ctx.blueprint.target, "configmaps", [])) if {
	count(object.get(ctx.blueprint.target, "configmaps", [])) > 0
} else := "none listed"

# METADATA
# title: Ordinary configmap keys
# description: A configmap change that touches no sensitive key is allowed.
# custom:
#   id: opsgate.govern.configuration.plain_keys
plain_keys(operation) := verdict.finding(
	rego.metadata.rule(),
	"allow",
	sprintf("configmap %s: keys %s are not sensitive", [operation.name, _keys(operation.changes)]),
	[],
) if {
	operation.type == "update_configmap"
	count(_sensitive(operation.changes)) == 0
}

# METADATA
# title: Sensitive configmap keys
# description: A configmap change to a key that looks like a credential is forbidden.
# custom:
#   id: opsgate.govern.configuration.sensitive_keys
sensitive_keys(operation) := verdict.finding_with_suggestion(
	rego.metadata.rule(),
	"forbid",
	sprintf("configmap %s: keys %s look sensitive", [operation.name, concat(", ", sort(_sensitive(operation.changes)))]),
	[],
	verdict.suggestion("keep credentials in Secrets, changed by a person through the secret store", null),
) if {
	operation.type == "update_configmap"
	count(_sensitive(operation.changes)) > 0
}

# METADATA
# title: Deployment strategy
# description: Changing the rollout strategy (for example maxUnavailable) asks for approval.
# custom:
#   id: opsgate.govern.configuration.strategy
strategy(operation) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf(
		"changing the deployment strategy (%s) changes how every rollout behaves: approval needed",
		[_keys(operation.changes)],
	),
	["spec.deployment.strategy", "spec.deployment.max_surge", "spec.deployment.max_unavailable"],
) if {
	operation.type == "update_strategy"
}

# METADATA
# title: Health checks
# description: Changing a liveness, readiness or startup probe asks for approval.
# custom:
#   id: opsgate.govern.configuration.health_checks
health_checks(operation) := verdict.finding(
	rego.metadata.rule(),
	"approve",
	sprintf(
		"changing the %s probe (%s) decides when pods count as healthy: approval needed",
		[operation.probe, _keys(operation.changes)],
	),
	[],
) if {
	operation.type == "update_health_checks"
}

_keys(changes) := concat(", ", sort(object.keys(changes)))

_sensitive(changes) := {key |
	some key, _ in changes
	_credential_like(lower(key))
}

_credential_like(key) if {
	some word in sensitive_words
	contains(key, word)
}

_credential_like(key) if {
	some part in regex.split(`[^a-z]+`, key)
	part in sensitive_parts
}
