#!/bin/sh
# Run each libFuzzer target named on the command line (fuzz_sigv4 ...) from
# $FUZZ_B for $FUZZ_SECONDS on a scratch copy of its seed corpus
# (tests/fuzz/corpus/NAME -> $FUZZ_B/corpus-NAME; the repository's corpus
# is never written).  Crash inputs land in $FUZZ_B/artifacts/.  Prints a
# table of executions and exec/s; exits 1 if any target failed.
set -u
FUZZ_B=${FUZZ_B:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
summary=$FUZZ_B/summary.txt
failed=0

mkdir -p "$FUZZ_B/artifacts"
: > "$summary"
for t in "$@"; do
	name=${t#fuzz_}
	work=$FUZZ_B/corpus-$name
	log=$FUZZ_B/$t.log
	rm -rf "$work"
	mkdir -p "$work"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -R "tests/fuzz/corpus/$name/." "$work/"
	fi
	echo "fuzz: $t for ${FUZZ_SECONDS}s (log $log)"
	"$FUZZ_B/$t" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
		-timeout=25 -artifact_prefix="$FUZZ_B/artifacts/$t-" \
		"$work" > "$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	units=$(ls "$work" | wc -l)
	if [ "$rc" -eq 0 ]; then
		status=ok
	else
		status="FAILED (rc $rc)"
		failed=1
		grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' \
			"$log" | head -n 5
	fi
	printf '%-22s %12s %10s %8s  %s\n' "$t" "${execs:--}" "${rate:--}" \
		"$units" "$status" >> "$summary"
done
echo
printf '%-22s %12s %10s %8s  %s\n' target executions exec/s corpus status
cat "$summary"
exit $failed
