#!/bin/sh
# argv.sh ARGS...: records the arguments it was given in the file
# $REFLEX_TEST_ARGV: their count on the first line, then each argument
# followed by a NUL byte (an argument with a newline stays one). It runs
# nothing else: anything a shell would have made of its arguments shows
# up as a wrong count or as a marker file the test looks for.
{
	printf '%d\n' "$#"
	for a in "$@"; do
		printf '%s\000' "$a"
	done
} > "$REFLEX_TEST_ARGV"
echo "recorded $# arguments"
