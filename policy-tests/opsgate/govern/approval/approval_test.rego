package opsgate.govern.approval_test

import data.opsgate.govern.approval
import data.opsgate.testdata

# Two approvers' keys (test-only): sre-lead is listed with its public key,
# mallory's key is listed nowhere.
_sre_key := {
	"kty": "OKP", "crv": "Ed25519",
	"x": "ufunEhIOdWrr59f8J16PSDkicgqajZ3gPhxPxPJ09dI",
	"d": "zeIpVzjoAUXiNG67fA6aig-F3IjL_264deW55-fc5x8",
}

_mallory_key := {
	"kty": "OKP", "crv": "Ed25519",
	"x": "fy5Ij1_P_IksovmxgkjSWmNGTSpNiuYSU-VibnbOT1w",
	"d": "yCq9rkWqdK4CIn4P0EfCLZUJNpBH7l5AllR-wXoHTX0",
}

_jwks := {"keys": [{
	"kty": "OKP", "crv": "Ed25519", "x": _sre_key.x,
	"kid": "sre-lead", "alg": "EdDSA", "use": "sig",
}]}

_blueprints := testdata.frontend_with([testdata.set("/approval_keys", _jwks)])

_rollback := {"type": "rollback"}

_requester := {"kind": "agent", "name": "kagent"}

# 2026-02-10T12:00:00Z, the request's "now", and ten minutes later
_now := 1770724800

_claims := {
	"iss": "opsgate",
	"purpose": "approve",
	"jti": "3f9c2a0011223344",
	"sub": "frontend",
	"approver": "sre-lead",
	"operation_digest": crypto.sha256(json.marshal(_rollback)),
	"blueprint": {"name": "frontend", "version": "1.0.0"},
	"bundle_revision": "test-revision",
	"requester": _requester,
	"iat": _now - 60,
	"exp": _now + 600,
}

_signed(claims, key) := io.jwt.encode_sign({"alg": "EdDSA", "typ": "JWT", "kid": "sre-lead"}, claims, key)

_request(token, changes) := json.patch(
	object.union(testdata.request(_rollback), {"approval": token, "actor": _requester}),
	changes,
)

_check(token, changes) := testdata.enforce_with(_request(token, changes), _blueprints).approval

_problems(claims, changes) := _check(_signed(claims, _sre_key), changes).problems

test_check_valid_approval if {
	verdict := testdata.enforce_with(_request(_signed(_claims, _sre_key), []), _blueprints)
	verdict.tier == "approve"
	verdict.approval == {
		"valid": true,
		"approver": "sre-lead",
		"request_id": "3f9c2a0011223344",
		"problems": [],
		"rules": ["opsgate.govern.approval.check"],
		"blueprint_refs": ["governance.approval_workflow.approvers"],
	}
}

test_check_from_is_not_part_of_the_digest if {
	_check(_signed(_claims, _sre_key), [testdata.set("/operation/from", 7)]).valid
}

test_check_wrong_key if {
	_check(_signed(_claims, _mallory_key), []).problems == [`not signed (EdDSA) by the public key of approver "sre-lead" listed in governance.approval_workflow.approvers`]
}

test_check_unlisted_approver if {
	claims := object.union(_claims, {"approver": "mallory"})
	token := io.jwt.encode_sign({"alg": "EdDSA", "kid": "mallory"}, claims, _mallory_key)
	_check(token, []).problems == [`not signed (EdDSA) by the public key of approver "mallory" listed in governance.approval_workflow.approvers`]
}

test_check_plain_name_approvers_cannot_approve if {
	# the test blueprints list approvers by name only: no key, no approval
	check := testdata.enforce(_request(_signed(_claims, _sre_key), [])).approval
	not check.valid
	count(check.problems) == 1
}

test_check_other_operation if {
	_problems(_claims, [testdata.set("/operation", {"type": "scale", "to": 50})]) == ["signed for another operation (the operation digest differs)"]
}

test_check_operation_with_one_more_field if {
	_problems(_claims, [testdata.set("/operation/to_revision", 3)]) == ["signed for another operation (the operation digest differs)"]
}

test_check_other_service if {
	problems := _problems(object.union(_claims, {"sub": "backend"}), [])
	problems == [`signed for service "backend", not "frontend"`]
}

test_check_other_version if {
	claims := object.union(_claims, {"blueprint": {"name": "frontend", "version": "0.9.0"}})
	_problems(claims, []) == [`signed under blueprint {"name":"frontend","version":"0.9.0"}, not frontend@1.0.0`]
}

test_check_other_revision if {
	_problems(object.union(_claims, {"bundle_revision": "older"}), []) == [`signed under bundle revision "older", not test-revision`]
}

test_check_other_requester if {
	_problems(_claims, [testdata.set("/actor", {"kind": "person", "name": "alice"})]) == [`signed for requester {"kind":"agent","name":"kagent"}, not {"kind":"person","name":"alice"}`]
}

test_check_without_actor if {
	_problems(_claims, [testdata.remove("/actor")]) == [`signed for requester {"kind":"agent","name":"kagent"}, not null`]
}

test_check_approver_is_requester if {
	me := {"kind": "person", "name": "sre-lead"}
	problems := _problems(object.union(_claims, {"requester": me}), [testdata.set("/actor", me)])
	problems == [`approver "sre-lead" is the requester: someone else must approve`]
}

test_check_expired if {
	_problems(object.union(_claims, {"exp": _now}), []) == ["expired, or without a valid expiry (exp) and issue time (iat), or no current time given"]
}

test_check_without_expiry if {
	_problems(object.remove(_claims, ["exp"]), []) == [
		"expired, or without a valid expiry (exp) and issue time (iat), or no current time given",
		"valid for longer than governance.approval_workflow.timeout_seconds",
	]
}

test_check_without_current_time if {
	_problems(_claims, [testdata.remove("/now")]) == ["expired, or without a valid expiry (exp) and issue time (iat), or no current time given"]
}

test_check_longer_than_timeout if {
	# the frontend's approval_workflow.timeout_seconds is 3600
	_problems(object.union(_claims, {"exp": (_now - 60) + 3601}), []) == ["valid for longer than governance.approval_workflow.timeout_seconds"]
}

test_check_exactly_the_timeout if {
	_check(_signed(object.union(_claims, {"exp": (_now - 60) + 3600}), _sre_key), []).valid
}

test_check_replayed if {
	changes := [testdata.set("/state/spent_approvals", ["0000", "3f9c2a0011223344"])]
	_problems(_claims, changes) == [`approval "3f9c2a0011223344" was already used`]
}

test_check_other_purpose if {
	_problems(object.union(_claims, {"purpose": "breaker_reset"}), []) == [`signed to "breaker_reset", not to approve`]
}

test_check_other_issuer if {
	_problems(object.union(_claims, {"iss": "someone"}), []) == ["not issued by opsgate (iss)"]
}

test_check_alg_none if {
	header := base64url.encode_no_pad(`{"alg":"none","kid":"sre-lead"}`)
	payload := base64url.encode_no_pad(json.marshal(_claims))
	check := _check(concat(".", [header, payload, ""]), [])
	not check.valid
	_listed_key_problem in check.problems
}

test_check_hs256_with_the_public_key_as_secret if {
	token := io.jwt.encode_sign({"alg": "HS256", "kid": "sre-lead"}, _claims, {"kty": "oct", "k": _sre_key.x})
	check := _check(token, [])
	check.problems == [_listed_key_problem]
}

test_check_garbage if {
	every token in ["", "garbage", "a.b.c", 42, null, {"jws": "x"}] {
		check := _check(token, [])
		check.valid == false
		check.problems == ["the approval is not a signed statement (compact JWS with a JSON payload)"]
	}
}

test_check_tampered_payload if {
	[header, _, signature] := split(_signed(_claims, _sre_key), ".")
	payload := base64url.encode_no_pad(json.marshal(object.union(_claims, {"operation_digest": crypto.sha256(json.marshal({"type": "scale", "to": 50}))})))
	check := _check(concat(".", [header, payload, signature]), [testdata.set("/operation", {"type": "scale", "to": 50})])
	check.problems == [_listed_key_problem]
}

test_no_approval_no_check if {
	not "approval" in object.keys(testdata.enforce_with(testdata.request(_rollback), _blueprints))
}

test_digest_of_non_object if {
	approval.digest("scale", "") == null
	approval.digest({"type": "scale", "to": 3}, 7) == null
}

_listed_key_problem := `not signed (EdDSA) by the public key of approver "sre-lead" listed in governance.approval_workflow.approvers`

test_check_signed_at_its_expiry_is_judged_by_its_signature if {
	# an answer signed on a clock ahead of the runner's (a simulated cluster) can carry iat = exp
	_check(_signed(object.union(_claims, {"iat": _now + 600}), _sre_key), []).valid
}

test_check_with_nothing_to_compare_is_invalid_and_says_so if {
	# no requester signed and no actor asking: no single check fails, yet nothing is covered
	check := _check(_signed(object.remove(_claims, ["requester"]), _sre_key), [testdata.remove("/actor")])
	check.valid == false
	check.problems == ["the approval could not be checked"]
}

test_check_salted_digest if {
	salted := object.union(_claims, {"nonce": "n0nce", "operation_digest": crypto.sha256(concat("", ["n0nce", json.marshal(_rollback)]))})
	_check(_signed(salted, _sre_key), []).valid
	unsalted := object.union(_claims, {"nonce": "n0nce"})
	_problems(unsalted, []) == ["signed for another operation (the operation digest differs)"]
}

# --- the rules, queried directly -------------------------------------------------

_now_ns := _now * 1000000000

test_check_queried_directly if {
	request := _request(_signed(_claims, _sre_key), [])
	approval.check(request, _blueprints.frontend, "test-revision", _now_ns) == {
		"valid": true,
		"approver": "sre-lead",
		"request_id": "3f9c2a0011223344",
		"problems": [],
		"rules": ["opsgate.govern.approval.check"],
		"blueprint_refs": ["governance.approval_workflow.approvers"],
	}
	approval.check(request, _blueprints.frontend, "later", _now_ns).problems == [`signed under bundle revision "test-revision", not later`]
}

test_covers_only_when_every_condition_holds if {
	request := _request(_signed(_claims, _sre_key), [])
	approval.covers(request, _claims, _blueprints.frontend, "test-revision", _now_ns)
	not approval.covers(request, _claims, _blueprints.frontend, "test-revision", _now_ns + 601000000000)
	not approval.covers(request, _claims, testdata.blueprints.frontend, "test-revision", _now_ns)
}

test_problems_none_for_a_covering_approval if {
	request := _request(_signed(_claims, _sre_key), [])
	approval.problems(request, _claims, _blueprints.frontend, "test-revision", _now_ns) == set()
	approval.problems(request, object.union(_claims, {"sub": "backend"}), _blueprints.frontend, "test-revision", _now_ns) == {`signed for service "backend", not "frontend"`}
}

test_digest_leaves_out_from_and_salts if {
	approval.digest({"type": "scale", "from": 2, "to": 3}, "") == crypto.sha256(`{"to":3,"type":"scale"}`)
	approval.digest({"type": "scale", "to": 3}, "s") == crypto.sha256(`s{"to":3,"type":"scale"}`)
}
