package opsgate.lib.quantity_test

import data.opsgate.lib.quantity

test_cpu_amounts if {
	every case in [
		["100m", 100], ["0.5", 500], ["2", 2000], ["1.5", 1500], ["0.0001", 1],
		[1, 1000], [0.25, 250], ["1e-1", 100],
	] {
		quantity.amount("cpu", case[0]) == case[1]
	}
}

test_memory_amounts if {
	every case in [
		["128Mi", 134217728], ["1Gi", 1073741824], ["64Ki", 65536], ["1k", 1000],
		["2M", 2000000], ["512", 512], [1024, 1024], ["1.5Gi", 1610612736],
	] {
		quantity.amount("memory", case[0]) == case[1]
	}
}

test_not_quantities_are_undefined if {
	every case in [
		["cpu", "1Gi"], ["cpu", "lots"], ["cpu", "-5m"], ["cpu", -1], ["cpu", true],
		["memory", "128m"], ["memory", "lots"], ["memory", -1], ["memory", null], ["gpu", "1"],
	] {
		not quantity.amount(case[0], case[1])
	}
}

test_format if {
	quantity.format("cpu", 90) == "90m"
	quantity.format("memory", 121634816) == "116Mi"
	quantity.format("memory", 1572864 + 1024) == "1537Ki"
	quantity.format("memory", 1000) == "1000"
}

test_step if {
	quantity.step("cpu") == 1
	quantity.step("memory") == 1048576
}
