# METADATA
# title: Classify an operation
# description: |
#   Every operation, computed or proposed, goes through here: it must fit
#   its type; then the built-in rules for its type give its tier, the
#   blueprint's agent_authority may make it stricter, and the circuit
#   breaker forbids everything while open. An operation no rule classifies
#   is forbidden (fail closed).
# custom:
#   id: opsgate.govern.classify
package opsgate.govern.classify

import data.opsgate.govern.authority
import data.opsgate.govern.configuration
import data.opsgate.govern.parameters
import data.opsgate.govern.protected
import data.opsgate.govern.recovery
import data.opsgate.govern.resources
import data.opsgate.govern.safety
import data.opsgate.govern.scaling
import data.opsgate.lib.verdict

# METADATA
# title: Findings
# description: Every finding about one operation for one service; never empty.
# custom:
#   id: opsgate.govern.classify.findings
findings(operation, ctx) := parameters.findings(operation, ctx.catalog) | safety.findings(ctx) if {
	not parameters.fits(operation, ctx.catalog)
} else := (built_in | authority.findings(operation, ctx)) | safety.findings(ctx) if {
	built_in := _built_in(_concern[operation.type], operation, ctx)
	count(built_in) > 0
} else := {unclassified(operation)} | safety.findings(ctx)

# METADATA
# title: Unclassified
# description: A known operation that no built-in rule classified (its context was missing) is forbidden.
# custom:
#   id: opsgate.govern.classify.unclassified
unclassified(operation) := verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf("no rule could classify %s with what is known: forbidden (fail closed)", [operation.type]),
	[],
)

# which concern holds the built-in rules of each operation type
_concern := {
	"scale": "scaling",
	"adjust_resources": "resources",
	"restart_pod": "recovery",
	"rollback": "recovery",
	"delete_pod": "recovery",
	"update_configmap": "configuration",
	"update_strategy": "configuration",
	"update_health_checks": "configuration",
	"delete_deployment": "protected",
	"delete_service": "protected",
	"delete_pvc": "protected",
	"modify_secret": "protected",
	"modify_network_policy": "protected",
	"modify_rbac": "protected",
}

_built_in("scaling", operation, ctx) := scaling.findings(operation, ctx)

_built_in("resources", operation, ctx) := resources.findings(operation, ctx)

_built_in("recovery", operation, ctx) := recovery.findings(operation, ctx)

_built_in("configuration", operation, _) := configuration.findings(operation)

_built_in("protected", operation, ctx) := protected.findings(operation, ctx)
