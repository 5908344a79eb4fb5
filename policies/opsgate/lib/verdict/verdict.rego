# METADATA
# title: Verdict building
# description: |
#   Builds every finding, proposal and verdict object, so their shape changes
#   in one place (like Regal's result.rego). A finding is one rule's opinion
#   of one operation; a verdict combines the findings: the strictest tier wins.
# custom:
#   id: opsgate.lib.verdict
package opsgate.lib.verdict

# METADATA
# title: Tier order
# description: Tiers from least to most strict; forbid always wins.
# custom:
#   id: opsgate.lib.verdict.rank
rank := {"allow": 0, "approve": 1, "forbid": 2}

# METADATA
# title: Finding
# description: One rule's tier for one operation, with why and which blueprint fields it read.
# custom:
#   id: opsgate.lib.verdict.finding
finding(metadata, tier, reason, refs) := {
	# "order" is the first key, so sorted findings come strictest first,
	# then built-in rules before agent_authority and safety, then by reason
	"order": [2 - rank[tier], _category(metadata.custom.id)],
	"tier": tier,
	"reason": reason,
	"rule": metadata.custom.id,
	"refs": refs,
	"suggestion": null,
}

# METADATA
# title: Finding with a suggestion
# description: A finding that also says what to do instead.
# custom:
#   id: opsgate.lib.verdict.finding_with_suggestion
finding_with_suggestion(metadata, tier, reason, refs, suggestion) := object.union(
	finding(metadata, tier, reason, refs),
	{"suggestion": suggestion},
)

# METADATA
# title: Suggestion
# description: What to do instead of a refused operation, in words and, where one exists, as an operation.
# custom:
#   id: opsgate.lib.verdict.suggestion
suggestion(text, operation) := {"text": text, "operation": operation}

# METADATA
# title: Proposal
# description: An operation a decide rule computed, with why and which blueprint fields it read.
# custom:
#   id: opsgate.lib.verdict.proposal
proposal(metadata, operation, reason, refs) := {
	"operation": operation,
	"reason": reason,
	"rule": metadata.custom.id,
	"refs": refs,
}

# METADATA
# title: Decision id
# description: A stable id for one operation of one service at one moment.
# custom:
#   id: opsgate.lib.verdict.decision_id
decision_id(service, now, operation) := substring(
	crypto.sha256(json.marshal({"service": service, "now": now, "operation": operation})),
	0, 16,
)

# METADATA
# title: Verdict
# description: |
#   Combine the findings of one operation into the verdict of the contract:
#   the strictest tier (or defer when a safety rule postpones an allowed
#   operation; postponements of approve or forbid are left out), every
#   reason and rule in order, the blueprint fields read, and the suggestion
#   of the strictest finding that has one.
# custom:
#   id: opsgate.lib.verdict.combined
combined(id, operation, leading, findings, postponements) := _verdict(
	id,
	operation,
	[leading, ordered, applied],
	_final_tier(tier, applied),
) if {
	ordered := sort([f | some f in findings])
	tier := _strictest_of_sorted(ordered)
	applied := _postponing(tier, postponements)
}

# sources: the leading proposals, the sorted findings and the postponements
# that apply, in the order their reasons are told (kept in a body of its
# own: OPA evaluates bodies of up to 16 variables fastest)
_verdict(id, operation, sources, tier) := {
	"id": id,
	"operation": operation,
	"tier": tier,
	"reasons": [item.reason | some source in sources; some item in source],
	"rules": [item.rule | some source in sources; some item in source],
	"blueprint_refs": sort({ref | some source in sources; some item in source; some ref in item.refs}),
	"suggestion": _suggestion(sources[1]),
}

# a postponement only postpones what would otherwise be allowed
_postponing("allow", postponements) := postponements

_postponing(tier, _) := set() if tier != "allow"

# the strictest tier of sorted findings; forbid when there are none (fail closed)
_strictest_of_sorted(ordered) := ordered[0].tier if count(ordered) > 0

else := "forbid"

_final_tier(tier, postponements) := "defer" if {
	tier == "allow"
	count(postponements) > 0
} else := tier

_category(rule) := 1 if {
	startswith(rule, "opsgate.govern.authority.")
} else := 1 if {
	startswith(rule, "opsgate.govern.agents.")
} else := 2 if {
	startswith(rule, "opsgate.govern.safety.")
} else := 0

# the suggestion of the strictest finding that has one
_suggestion(ordered) := [f.suggestion | some f in ordered; f.suggestion != null][0] if {
	some f in ordered
	f.suggestion != null
} else := null
