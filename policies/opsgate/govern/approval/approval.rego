# METADATA
# title: Signed approvals
# description: |
#   An approve-tier operation runs only with a signed approval that covers
#   exactly it: an EdDSA JWS by an approver the blueprint lists with a public
#   key (the compiler puts their JWKS in approval_keys), for this service,
#   this operation (its canonical digest: every field), this blueprint name
#   and version and this bundle revision, requested by the actor at hand, not
#   expired, not spent, valid no longer than the approval timeout, and signed
#   by someone other than the requester (four eyes). Anything not understood
#   makes the approval invalid; the tier itself never changes here.
# custom:
#   id: opsgate.govern.approval
package opsgate.govern.approval

# METADATA
# title: Approval check
# description: |
#   What the signed approval of an enforce request proves: valid when no
#   problem was found, with the approver, the request id and every problem.
# custom:
#   id: opsgate.govern.approval.check
check(request, blueprint, revision, now_ns) := {
	"valid": valid,
	"approver": object.get(claims, "approver", null),
	"request_id": object.get(claims, "jti", null),
	"problems": _explained(valid, problems(request, claims, blueprint, revision, now_ns)),
	"rules": ["opsgate.govern.approval.check"],
	"blueprint_refs": ["governance.approval_workflow.approvers"],
} if {
	claims := _claims(request.approval)
	valid := covers(request, claims, blueprint, revision, now_ns)
} else := {
	"valid": false,
	"approver": null,
	"request_id": null,
	"problems": ["the approval is not a signed statement (compact JWS with a JSON payload)"],
	"rules": ["opsgate.govern.approval.check"],
	"blueprint_refs": ["governance.approval_workflow.approvers"],
}

# METADATA
# title: Approval covers the request
# description: |
#   True only when every condition holds, each stated positively, so that
#   anything missing or not understood leaves the approval invalid.
# custom:
#   id: opsgate.govern.approval.covers
covers(request, claims, blueprint, revision, now_ns) if {
	_signed_by_listed_key(request.approval, claims, blueprint)
	claims.iss == "opsgate"
	claims.purpose == "approve"
	claims.sub == request.service
	claims.operation_digest == _digest_of(request, claims)
	claims.blueprint == _name_and_version(blueprint)
	claims.bundle_revision == revision
	claims.requester == request.actor
	_four_eyes(claims, request)
	_unexpired(claims, now_ns)
	_within_timeout(claims, blueprint)
	_unspent(claims, request)
} else := false

# an invalid approval always says why, even when no single check could tell
_explained(valid, found) := ["the approval could not be checked"] if {
	valid == false
	count(found) == 0
} else := sort(found)

# METADATA
# title: Approval problems
# description: Every reason the signed approval does not cover the request; empty when it does.
# custom:
#   id: opsgate.govern.approval.problems
problems(request, claims, blueprint, revision, now_ns) := {check.problem |
	some check in _checks(request, claims, blueprint, revision, now_ns)
	check.holds == false
}

_checks(request, claims, blueprint, revision, now_ns) := [
	{
		"holds": _signed_by_listed_key(request.approval, claims, blueprint),
		"problem": sprintf(
			"not signed (EdDSA) by the public key of approver %v listed in governance.approval_workflow.approvers",
			[_shown(object.get(claims, "approver", null))],
		),
	},
	{
		"holds": object.get(claims, "iss", null) == "opsgate",
		"problem": "not issued by opsgate (iss)",
	},
	{
		"holds": object.get(claims, "purpose", null) == "approve",
		"problem": sprintf("signed to %v, not to approve", [_claim(claims, "purpose")]),
	},
	{
		"holds": object.get(claims, "sub", null) == request.service,
		"problem": sprintf("signed for service %v, not %v", [_claim(claims, "sub"), _shown(request.service)]),
	},
	{
		"holds": object.get(claims, "operation_digest", null) == _digest_of(request, claims),
		"problem": "signed for another operation (the operation digest differs)",
	},
	{
		"holds": object.get(claims, "blueprint", null) == _name_and_version(blueprint),
		"problem": sprintf(
			"signed under blueprint %v, not %s@%s",
			[_claim(claims, "blueprint"), blueprint.metadata.name, blueprint.metadata.version],
		),
	},
	{
		"holds": object.get(claims, "bundle_revision", null) == revision,
		"problem": sprintf("signed under bundle revision %v, not %s", [_claim(claims, "bundle_revision"), revision]),
	},
	{
		"holds": object.get(claims, "requester", null) == object.get(request, "actor", null),
		"problem": sprintf(
			"signed for requester %v, not %v",
			[_shown(object.get(claims, "requester", null)), _shown(object.get(request, "actor", null))],
		),
	},
	{
		"holds": _four_eyes(claims, request),
		"problem": sprintf("approver %v is the requester: someone else must approve", [_claim(claims, "approver")]),
	},
	{
		"holds": _unexpired(claims, now_ns),
		"problem": "expired, or without a valid expiry (exp) and issue time (iat), or no current time given",
	},
	{
		"holds": _within_timeout(claims, blueprint),
		"problem": "valid for longer than governance.approval_workflow.timeout_seconds",
	},
	{
		"holds": _unspent(claims, request),
		"problem": sprintf("approval %v was already used", [_shown(object.get(claims, "jti", null))]),
	},
]

# METADATA
# title: Operation digest
# description: |
#   SHA-256 of the salt (the request's random nonce, signed in the approval)
#   followed by the operation as json.marshal writes it (sorted keys), without
#   the informational "from": what an approval is bound to.
# custom:
#   id: opsgate.govern.approval.digest
digest(operation, salt) := crypto.sha256(concat("", [salt, json.marshal(object.remove(operation, ["from"]))])) if {
	is_object(operation)
	is_string(salt)
} else := null

# the digest of the operation at hand, salted with the nonce the approver signed
_digest_of(request, claims) := digest(object.get(request, "operation", null), object.get(claims, "nonce", ""))

_claims(token) := claims if {
	is_string(token)
	[_, claims, _] := io.jwt.decode(token)
	is_object(claims)
}

_signed_by_listed_key(token, claims, blueprint) if {
	some key in object.get(blueprint, ["approval_keys", "keys"], [])
	key.kid == claims.approver

	constraints := {"cert": json.marshal({"keys": [key]}), "alg": "EdDSA", "time": _signed_at_ns(claims)}
	[valid, header, _] := io.jwt.decode_verify(token, constraints)
	valid
	header.alg == "EdDSA"
} else := false

# decode_verify also checks the expiry: ask it a millisecond before the end of validity
# (nanoseconds are floats there), so it judges the signature alone; expiry is checked on its own
_signed_at_ns(claims) := (claims.exp * 1000000000) - 1000000 if {
	is_number(claims.exp)
} else := 0

_four_eyes(claims, request) if {
	is_string(claims.approver)
	claims.approver != object.get(request, ["actor", "name"], null)
	claims.approver != object.get(claims, ["requester", "name"], null)
} else := false

_unexpired(claims, now_ns) if {
	is_number(now_ns)
	is_number(claims.exp)
	is_number(claims.iat)
	claims.iat <= claims.exp
	now_ns < claims.exp * 1000000000
} else := false

_within_timeout(claims, blueprint) if {
	claims.exp - claims.iat <= blueprint.governance.approval_workflow.timeout_seconds
} else := false

_unspent(claims, request) if {
	spent := object.get(request, ["state", "spent_approvals"], [])
	is_array(spent)
	not claims.jti in spent
} else := false

_name_and_version(blueprint) := {"name": blueprint.metadata.name, "version": blueprint.metadata.version}

# a value from the token or the request, shown safely in a reason
_shown(value) := json.marshal(value)

_claim(claims, name) := _shown(object.get(claims, name, null))
