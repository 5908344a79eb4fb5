# Classification reads the operation catalog: the concern routes, the floor
# bounds, the protected entries speak. Each test changes the catalog and
# sees the verdict follow.
package opsgate.govern.classify_test

import data.opsgate.testdata

_catalog := data.opsgate.catalog.operations

test_catalog_floor_raises_a_looser_built_in_tier if {
	restart := {"type": "restart_pod", "pod": "frontend-1"}
	testdata.enforce(testdata.request(restart)).tier == "allow"
	stricter := json.patch(_catalog, [{"op": "replace", "path": "/restart_pod/floor", "value": "approve"}])
	verdict := testdata.enforce(testdata.request(restart)) with data.opsgate.catalog.operations as stricter
	verdict.tier == "approve"
	"opsgate.govern.classify.at_floor" in verdict.rules
	"the operation catalog puts restart_pod at approve or stricter" in verdict.reasons
}

test_catalog_floor_never_loosens if {
	rollback := {"type": "rollback"}
	looser := json.patch(_catalog, [{"op": "replace", "path": "/rollback/floor", "value": "allow"}])
	verdict := testdata.enforce(testdata.request(rollback)) with data.opsgate.catalog.operations as looser
	verdict.tier == "approve"
	not "opsgate.govern.classify.at_floor" in verdict.rules
}

test_catalog_concern_routes_to_the_rules if {
	# routed to a concern whose rules don't know it: nothing classifies it, forbidden
	moved := json.patch(_catalog, [{"op": "replace", "path": "/restart_pod/concern", "value": "scaling"}])
	verdict := testdata.enforce(testdata.request({"type": "restart_pod", "pod": "frontend-1"})) with data.opsgate.catalog.operations as moved
	verdict.tier == "forbid"
	verdict.rules[0] == "opsgate.govern.classify.unclassified"
}

test_protected_words_come_from_the_catalog if {
	reworded := json.patch(_catalog, [
		{"op": "replace", "path": "/delete_pvc/protected/what", "value": "dropping claim"},
		{"op": "replace", "path": "/delete_pvc/protected/instead", "value": "ask the storage team"},
	])
	verdict := testdata.enforce(testdata.request({"type": "delete_pvc", "name": "data-0"})) with data.opsgate.catalog.operations as reworded
	verdict.tier == "forbid"
	verdict.reasons[0] == "dropping claim data-0 is forbidden"
	verdict.suggestion == {"text": "ask the storage team", "operation": null}
}

test_a_parameter_without_a_known_kind_fits_nothing if {
	unkinded := json.patch(_catalog, [{"op": "remove", "path": "/scale/parameters/to/kind"}])
	verdict := testdata.enforce(testdata.request({"type": "scale", "to": 3})) with data.opsgate.catalog.operations as unkinded
	verdict.tier == "forbid"
	contains(verdict.reasons[0], "to has no known kind in the operation catalog")
}

test_a_floor_the_catalog_misspells_forbids if {
	misspelled := json.patch(_catalog, [{"op": "replace", "path": "/restart_pod/floor", "value": "allowed"}])
	verdict := testdata.enforce(testdata.request({"type": "restart_pod", "pod": "frontend-1"})) with data.opsgate.catalog.operations as misspelled
	verdict.tier == "forbid"
	"the operation catalog gives restart_pod no known floor tier: forbidden (fail closed)" in verdict.reasons
}
