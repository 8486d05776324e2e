#!/bin/sh
# flaky.sh FILE N CODE: appends a line to FILE; exits CODE while FILE has
# fewer than N lines, then 0.
printf 'run\n' >>"$1"
n=$(wc -l <"$1")
if [ "$n" -lt "$2" ]; then
	printf 'run %s of %s: failing with %s\n' "$n" "$2" "$3"
	exit "$3"
fi
printf 'run %s: succeeded\n' "$n"
