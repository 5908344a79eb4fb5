package opsgate.main_test

import data.opsgate.main

_blueprints := {"frontend": {"metadata": {"name": "frontend", "version": "1.0.0"}}}

test_decide_known_service if {
	main.decide == {
		"service": "frontend",
		"blueprint": {"name": "frontend", "version": "1.0.0"},
		"bundle_revision": "rev-1",
		"decisions": [],
	} with input as {"service": "frontend"}
		with data.opsgate.blueprints as _blueprints
		with data.opsgate.bundle.revision as "rev-1"
}

test_decide_unknown_service_is_undefined if {
	not main.decide with input as {"service": "nope"}
		with data.opsgate.blueprints as _blueprints
		with data.opsgate.bundle.revision as "rev-1"
}
