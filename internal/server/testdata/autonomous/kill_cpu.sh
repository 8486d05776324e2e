#!/bin/sh
# kill_cpu.sh PID: the remediation step of the story. It records its
# argument, and fails while the file $REFLEX_TEST_MARKS.fail exists.
printf 'kill %s\n' "$1" >> "$REFLEX_TEST_MARKS"
if [ -e "$REFLEX_TEST_MARKS.fail" ]; then
	echo "kill $1: operation not permitted" >&2
	exit 1
fi
echo "killed $1"
