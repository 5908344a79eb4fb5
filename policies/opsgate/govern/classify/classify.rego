# METADATA
# title: Classify an operation
# description: |
#   Every operation, computed or proposed, goes through here: it must fit
#   its type; then the built-in rules for its type give its tier, the
#   blueprint's agent_authority (and, for an agent, its entry in
#   governance.agents) may make it stricter, and the circuit
#   breaker forbids everything while open. An operation no rule classifies
#   is forbidden (fail closed).
# custom:
#   id: opsgate.govern.classify
package opsgate.govern.classify

import data.opsgate.govern.agents
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
} else := (governed | agents.findings(operation, ctx)) | safety.findings(ctx) if {
	built_in := _built_in(ctx.catalog[operation.type].concern, operation, ctx)
	count(built_in) > 0
	classified := (built_in | at_floor(operation, built_in, ctx)) | {f | f := unknown_floor(operation, ctx)}
	governed := classified | authority.findings(operation, ctx)
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

# METADATA
# title: Catalog floor
# description: |
#   An operation is never classified below the floor tier its catalog entry
#   declares: when the rules of its concern found it less strict, this
#   finding raises it to the floor.
# custom:
#   id: opsgate.govern.classify.at_floor
at_floor(operation, built_in, ctx) := {verdict.finding(
	rego.metadata.rule(),
	minimum,
	sprintf("the operation catalog puts %s at %s or stricter", [operation.type, minimum]),
	[],
)} if {
	minimum := ctx.catalog[operation.type].floor
	max({verdict.rank[f.tier] | some f in built_in}) < verdict.rank[minimum]
} else := set()

# METADATA
# title: Unknown floor
# description: A type whose catalog entry gives no known floor tier is forbidden (fail closed).
# custom:
#   id: opsgate.govern.classify.unknown_floor
unknown_floor(operation, ctx) := verdict.finding(
	rego.metadata.rule(),
	"forbid",
	sprintf("the operation catalog gives %s no known floor tier: forbidden (fail closed)", [operation.type]),
	[],
) if {
	not verdict.rank[object.get(ctx.catalog[operation.type], "floor", "")]
}

# the rules of each concern the catalog names (data.opsgate.catalog.operations[_].concern)
_built_in("scaling", operation, ctx) := scaling.findings(operation, ctx)

_built_in("resources", operation, ctx) := resources.findings(operation, ctx)

_built_in("recovery", operation, ctx) := recovery.findings(operation, ctx)

_built_in("configuration", operation, ctx) := configuration.findings(operation, ctx)

_built_in("protected", operation, ctx) := protected.findings(operation, ctx)
