#!/usr/bin/env bats
# Workspace content is untrusted, across hosts: the attacks of
# tests/security.bats that a network filesystem carries, planted through
# mount A ($SW_MH_A, one "host") while the victim runs every verb through
# mount B ($SW_MH_B, another): symlinks to the victim's local files,
# FIFOs, traversal ids in stage and claim files, bad agent records and
# lease hints, names with escape sequences.  Nothing outside the workspace
# may change, nothing may hang, and the good items are served in order.
# One user plays every part: the FUSE mounts admit only the user who made
# them.  The victim starts 1.5 s after a plant: a directory replaced on
# one host looks as it was on the other for about a second (DESIGN.md),
# and that staleness is the filesystem's, not an attack.
SEC_ONE_USER=1
PLANT_SETTLE=1.5
load ../helper
load ../security

setup() {
	[ -n "${SW_MH_A:-}" ] && [ -n "${SW_MH_B:-}" ] ||
		skip "SW_MH_A and SW_MH_B (two mounts of one network filesystem) are not set"
	[ -d "$SW_MH_A" ] && [ -d "$SW_MH_B" ] || skip "SW_MH_A or SW_MH_B is not a directory"
	sec_setup   # the victim's files stay on this host's disk
	sub=sw-sec-test.$$.$BATS_TEST_NUMBER.$RANDOM
	W=$SW_MH_A/$sub   # where attacks are planted
	export SW_DIR=$SW_MH_B/$sub   # where the victim works
	mkdir -m 700 "$W"
	for _ in $(seq 50); do [ -d "$SW_DIR" ] && break; sleep 0.1; done
	as victim sw-claim stats >/dev/null
}

teardown() {
	[ -n "${sub:-}" ] && rm -rf "${SW_MH_A:?}/$sub"
	sec_teardown
}

@test "a stage file planted on host A with a traversal id: next and reap on host B replace no file outside the workspace" {
	sc_stage_traversal
}

@test "claims, delayed and blocked items planted on host A with traversal ids, roles or after: reap on host B quarantines them" {
	sc_content_traversal
}

@test "done/x and deps/x symlinks planted on host A: reap on host B finishes x and deletes nothing in the private directory" {
	sc_done_deps_symlinks
}

@test "state directories replaced by symlinks on host A are moved aside on host B, never written through" {
	sc_state_dir_symlinks
}

@test "entries and bucket directories that are symlinks, planted on host A, are quarantined on host B, their targets untouched" {
	sc_entry_symlinks
}

@test "FIFOs planted on host A as items, transitions, hints and locks hang no reader on host B" {
	sc_fifos
}

@test "a symlink, FIFO, directory, non-JSON or empty file at the head of a bucket, planted on host A: next on host B serves the good items" {
	sc_bucket_head
}

@test "a FIFO as a lease's head hint, planted on host A, hangs no acquire, show or list on host B" {
	sc_lease_head_fifo
}

@test "limit and breaker chains with links, FIFOs and oversized versions planted on host A: host B follows none, hangs on none, works again after" {
	sc_limit_chains
}

@test "bad agent records planted on host A are skipped with a warning on host B and moved aside by reap there" {
	sc_agent_records
}

@test "entry names with escape sequences and newlines, planted on host A, are escaped in host B's warnings" {
	sc_escaped_names
}
